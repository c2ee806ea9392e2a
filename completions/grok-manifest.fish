complete -c grok-manifest -l cfgfile -d 'Config file with at least a [core] section; flags given on the command line win over its values' -r -F
complete -c grok-manifest -s m -l manifest -d 'Manifest file to write (gzip-compressed when it ends in .gz)' -r -F
complete -c grok-manifest -s t -l toplevel -d 'Top directory under which all repositories live' -r -F
complete -c grok-manifest -s l -l logfile -d 'Also write a log to this file (it survives logrotate)' -r -F
complete -c grok-manifest -s i -l ignore-paths -d 'Skip paths matching this shell-style pattern while walking; may be given several times' -r
complete -c grok-manifest -s r -l ignore-refs -d 'Leave refs matching this pattern (e.g. \'refs/meta/*\') out of the fingerprint; may be given several times' -r
complete -c grok-manifest -l shard-map -d 'Print the routing map of a mirror split into N shards ([pull] shard = K/N) and change nothing: for each repository of the manifest (-m, or [core] manifest), the shard K that holds it' -r
complete -c grok-manifest -l shard-map-format -d 'The form of --shard-map\'s output' -r -f -a "nginx\t'Lines of an nginx `map` block (`"/path.git" K;`), for `include`'
haproxy\t'An HAProxy map file (`/path.git K`), for an exact `map` lookup'"
complete -c grok-manifest -s n -l use-now -d 'Record the current time as "modified" instead of reading commit dates (faster in hooks; ignored while the manifest is empty)'
complete -c grok-manifest -s c -l check-export-ok -d 'Only list repositories that contain a git-daemon-export-ok file'
complete -c grok-manifest -s p -l purge -d 'Walk the whole tree and drop repositories that no longer exist'
complete -c grok-manifest -s x -l remove -d 'Remove the given repositories (or symlinks) from the manifest'
complete -c grok-manifest -s y -l pretty -d 'Write indented JSON with sorted keys (larger, easier to read)'
complete -c grok-manifest -s w -l wait-for-manifest -d 'With paths: wait until the manifest exists (for several writers sharing one manifest)'
complete -c grok-manifest -s o -l fetch-objstore -d 'After updating the manifest, fetch new objects of the updated repositories into their object-storage repo'
complete -c grok-manifest -s v -l verbose -d 'Tell what is being done'
complete -c grok-manifest -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-manifest -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-manifest -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-manifest -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-manifest -s V -l version -d 'Print version'
