complete -c grok-bundle -s c -l config -d 'Config file (the [core] section is used: toplevel, manifest, log, loglevel)' -r -F
complete -c grok-bundle -s o -l outdir -d 'Where to write the bundles (created if missing)' -r -F
complete -c grok-bundle -s g -l gitargs -d 'Extra arguments for git, split at white space' -r
complete -c grok-bundle -s r -l revlistargs -d 'Arguments for `git rev-list` choosing what goes into each bundle, split at white space' -r
complete -c grok-bundle -s s -l maxsize -d 'Largest repository to bundle, in GiB (objects on disk, those it borrows through alternates included); bigger ones are skipped' -r
complete -c grok-bundle -s i -l include -d 'Only bundle repositories whose manifest path matches one of these shell-style patterns (with or without the leading /)' -r
complete -c grok-bundle -s v -l verbose -d 'Tell what is being done'
complete -c grok-bundle -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-bundle -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-bundle -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-bundle -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-bundle -s V -l version -d 'Print version'
