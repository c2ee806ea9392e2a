complete -c grok-shallow-tar -s c -l config -d 'Config file (the [core] section is used: toplevel, manifest, log, loglevel)' -r -F
complete -c grok-shallow-tar -s o -l outdir -d 'Where the tarballs are published (created if missing); keep it on one file system and outside the toplevel' -r -F
complete -c grok-shallow-tar -l branches -d 'Publish the branches matching BRANCHGLOB of the repositories whose manifest path (with or without its leading slash) matches REPOGLOB; shell patterns, split at the last colon. Repeat for more' -r
complete -c grok-shallow-tar -l clone-url-base -d 'The public site the unpacked clones fetch from (their origin is this plus the manifest path), e.g. https://git.kernel.org' -r
complete -c grok-shallow-tar -l depth -d 'How many commits of history each tarball holds' -r
complete -c grok-shallow-tar -l max-ref-age -d 'Publish only the branches whose tip was committed within this many days (0: any age)' -r
complete -c grok-shallow-tar -l max-branches -d 'Publish at most this many branches per repository, those with the newest tips (0: no limit)' -r
complete -c grok-shallow-tar -s v -l verbose -d 'Tell what is being done'
complete -c grok-shallow-tar -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-shallow-tar -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-shallow-tar -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-shallow-tar -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-shallow-tar -s V -l version -d 'Print version'
