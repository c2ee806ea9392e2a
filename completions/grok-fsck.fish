complete -c grok-fsck -s c -l config -d 'Config file (the [core] and [fsck] sections are used)' -r -F
complete -c grok-fsck -s v -l verbose -d 'Tell what is being done'
complete -c grok-fsck -s f -l force -d 'Check every repository now, whatever its schedule'
complete -c grok-fsck -l repack-only -d 'Only repack repositories that need it; run no `git fsck`'
complete -c grok-fsck -l connectivity-only -d 'Run `git fsck --connectivity-only` (much faster: checks that all objects are there and linked, not their contents)'
complete -c grok-fsck -l repack-all-quick -d 'Quick-repack every repository that has loose objects (implies -f)'
complete -c grok-fsck -l repack-all-full -d 'Fully repack every repository that has loose objects or more than one pack (implies -f)'
complete -c grok-fsck -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-fsck -s V -l version -d 'Print version'
