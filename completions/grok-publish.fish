complete -c grok-publish -s c -l config -d 'Config file ([core] and [publish]; [fsck] consumer_grace)' -r -F
complete -c grok-publish -s w -l wait -d 'How long to wait for a repository\'s lock (a fetch or repack in progress), and for another grok-publish to finish' -r
complete -c grok-publish -s v -l verbose -d 'Tell what is being done'
complete -c grok-publish -l full -d 'Compare every repository of the manifest with the bucket and upload what is missing (the first upload, and repair). Without it, a run without REPO publishes the repositories whose recorded fingerprint differs from the one published, and sends nothing for the others'
complete -c grok-publish -l stdin -d 'Also publish the repositories whose paths come on standard input, one per line (grok-pull\'s post_clone_complete_hook writes them so)'
complete -c grok-publish -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-publish -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-publish -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-publish -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-publish -s V -l version -d 'Print version'
