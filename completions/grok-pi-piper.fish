complete -c grok-pi-piper -s c -l config -d 'The pi-piper config file: a section per inbox name (or DEFAULT) with `pipe`, and optionally `log`, `loglevel` and `shallow`' -r -F
complete -c grok-pi-piper -s l -l pipe-last -d 'Pipe the last NN messages on master whatever was piped before, then carry on tracking from the newest' -r
complete -c grok-pi-piper -s v -l verbose -d 'Tell what is being done'
complete -c grok-pi-piper -s d -l dry-run -d 'Only show what would be piped; pipe nothing, change nothing'
complete -c grok-pi-piper -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-pi-piper -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-pi-piper -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-pi-piper -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-pi-piper -s V -l version -d 'Print version'
