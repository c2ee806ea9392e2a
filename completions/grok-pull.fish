complete -c grok-pull -s c -l config -d 'The grokmirror config file' -r -F
complete -c grok-pull -s v -l verbose -d 'Tell what is being done'
complete -c grok-pull -s n -l no-mtime-check -d 'Check every repository even if the remote manifest has not changed since the last run'
complete -c grok-pull -s p -l purge -d 'Remove repositories that are no longer in the remote manifest (as `[pull] purge = yes` does)'
complete -c grok-pull -l force-purge -d 'Purge even when more repositories would go than `[pull] purgeprotect` allows'
complete -c grok-pull -s o -l continuous -d 'Keep running: re-check the origin every `[pull] refresh` seconds, fetch what `[pull] socket` is told about at once, follow changes of a file:// manifest and of the config file (without `refresh` in the config, run once)'
complete -c grok-pull -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-pull -s V -l version -d 'Print version'
