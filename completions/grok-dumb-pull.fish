complete -c grok-dumb-pull -s r -l remote-names -d 'Only fetch remotes whose name matches this shell-style pattern; may be given several times (default: every remote)' -r
complete -c grok-dumb-pull -s u -l post-update-hook -d 'Run this executable after each repository whose refs changed, with the repository\'s full path as its argument' -r -F
complete -c grok-dumb-pull -s l -l logfile -d 'Also write a log to this file (it survives logrotate)' -r -F
complete -c grok-dumb-pull -s v -l verbose -d 'Tell what is being done'
complete -c grok-dumb-pull -s s -l svn -d 'The remotes are Subversion repositories: run `git svn fetch` instead of `git remote update` (needs git-svn for the git in use)'
complete -c grok-dumb-pull -l config-check -d 'Check the arguments and exit, changing nothing'
complete -c grok-dumb-pull -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-dumb-pull -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-dumb-pull -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-dumb-pull -s V -l version -d 'Print version'
