# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_grok_pi_indexer_global_optspecs
    string join \n v/verbose c/pi-config= t/toplevel= p/pi-toplevel= l/logfile= L/indexlevel= j/jobs= no-fsync config-check json no-network h/help V/version
end

function __fish_grok_pi_indexer_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_grok_pi_indexer_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_grok_pi_indexer_using_subcommand
    set -l cmd (__fish_grok_pi_indexer_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s c -l pi-config -d 'The public-inbox config file (PI_CONFIG of every public-inbox command run)' -r -F
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s t -l toplevel -d 'The mirror\'s top level: the repositories given must be below it' -r -F
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s p -l pi-toplevel -d 'Where the public-inbox databases go when not beside the git repositories: `<PITOPLEVEL>/<inbox path>`, its `git` a symlink to the mirrored epochs' -r -F
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s l -l logfile -d 'Also log into this file' -r -F
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s L -l indexlevel -d 'The index level of newly initialised inboxes and of extindex' -r -f -a "full\t'Everything, positional queries included'
medium\t'Search without positional data'
basic\t'No search index, only what HTTP, NNTP and IMAP need'"
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s j -l jobs -d 'The --jobs given to public-inbox (0: no parallel indexing)' -r
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s v -l verbose -d 'Tell what is being done'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -l no-fsync -d 'Give --no-fsync to public-inbox (faster, but an index may need a rebuild after a power cut)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -l config-check -d 'Check the config file and exit, changing nothing'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -l json -d 'With --config-check: print the problems as one JSON document'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -l no-network -d 'With --config-check: contact nothing over the network (accepted by every program; this one has nothing to contact)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -s V -l version -d 'Print version'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -f -a "init" -d 'Initialise and index the inboxes of the repositories listed on standard input (post_clone_complete_hook), or INBOXDIR'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -f -a "update" -d 'Index the inbox of REPO (post_update_hook)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -f -a "extindex" -d 'Run public-inbox-extindex on every configured inbox (post_work_complete_hook)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -l local-toplevel -d 'The URL of the local mirror\'s top level, prefixed to each inbox\'s name in its `url` (leave empty when served from /)' -r
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -l origin-hostname -d 'Where an inbox whose epochs carry no `refs/meta/origins` has its config: `<URL>/<inbox>/_/text/config/raw` (empty: ask nobody and use defaults)' -r
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -l listid-priority -d 'List-Id patterns, highest search boost first (comma-separated shell patterns)' -r
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -l extra-cfgopts -d 'Further config options taken from the origin\'s config (comma-separated; listid always is)' -r
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -l force-reinit -d 'Drop INBOXDIR\'s msgmap.sqlite3 and xap15 and initialise it again'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand init" -s h -l help -d 'Print help'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand update" -s h -l help -d 'Print help'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand extindex" -s h -l help -d 'Print help'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand help; and not __fish_seen_subcommand_from init update extindex help" -f -a "init" -d 'Initialise and index the inboxes of the repositories listed on standard input (post_clone_complete_hook), or INBOXDIR'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand help; and not __fish_seen_subcommand_from init update extindex help" -f -a "update" -d 'Index the inbox of REPO (post_update_hook)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand help; and not __fish_seen_subcommand_from init update extindex help" -f -a "extindex" -d 'Run public-inbox-extindex on every configured inbox (post_work_complete_hook)'
complete -c grok-pi-indexer -n "__fish_grok_pi_indexer_using_subcommand help; and not __fish_seen_subcommand_from init update extindex help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
