complete -c grok-snapshot -s c -l config -d 'Config file (the [core] section is used: toplevel, objstore, log, loglevel)' -r -F
complete -c grok-snapshot -s o -l outdir -d 'Where the snapshots go (created if missing)' -r -F
complete -c grok-snapshot -s k -l keep -d 'Remove the snapshots under OUTDIR older than this (seconds, or with a unit: 90s, 30m, 12h, 7d), after taking the new ones. Without it nothing is removed' -r
complete -c grok-snapshot -s w -l wait -d 'How long to wait for a repository\'s lock (a fetch or repack in progress) before giving up on it' -r
complete -c grok-snapshot -s v -l verbose -d 'Tell what is being done'
complete -c grok-snapshot -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-snapshot -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-snapshot -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-snapshot -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-snapshot -s V -l version -d 'Print version'
