# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_bootstrap_data_global_optspecs
    string join \n manifest= check json only= v/verbose q/quiet h/help V/version
end

function __fish_bootstrap_data_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_bootstrap_data_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_bootstrap_data_using_subcommand
    set -l cmd (__fish_bootstrap_data_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -s h -l help -d 'Print help'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -s V -l version -d 'Print version'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "backup" -d 'One restic snapshot of every `backup`-class path (refused while a path still waits for its restore on this host)'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "restore" -d 'Brings back each must-back-up path whose data is not this host\'s yet, from the newest snapshot, and starts the services that waited for it'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "status" -d 'Per must-back-up path, its newest snapshot and its age (exit 1 if stale or missing)'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "snapshots" -d 'Per must-back-up path, every snapshot of this host that holds it'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "verify" -d 'Reads the backup back, and records the result for the audit'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "forget" -d 'Forgets the snapshots of this host that `backup.keep` does not keep, and prunes'
complete -c bootstrap-data -n "__fish_bootstrap_data_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -l force -d 'Back up even paths that still wait for their restore (their fresh state becomes the newest snapshot)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand backup" -s h -l help -d 'Print help'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l snapshot -d 'Restore from this snapshot (an id or its start), over whatever is there (kept aside first)' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l force -d 'Restore over whatever is there (kept aside first)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l no-start -d 'Leave the services that waited for their data stopped (to look at the data first); `bootstrap-services` or another `restore` starts them'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand restore" -s h -l help -d 'Print help'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -l deep -d 'Ask the repository, whatever the local record says'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand snapshots" -s h -l help -d 'Print help'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -l if-due -d 'Only when due: when `backup.verify.every` has passed since the last successful verification (and never without `backup.verify`). For the scheduled run'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand forget" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "backup" -d 'One restic snapshot of every `backup`-class path (refused while a path still waits for its restore on this host)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "restore" -d 'Brings back each must-back-up path whose data is not this host\'s yet, from the newest snapshot, and starts the services that waited for it'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "status" -d 'Per must-back-up path, its newest snapshot and its age (exit 1 if stale or missing)'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "snapshots" -d 'Per must-back-up path, every snapshot of this host that holds it'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "verify" -d 'Reads the backup back, and records the result for the audit'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "forget" -d 'Forgets the snapshots of this host that `backup.keep` does not keep, and prunes'
complete -c bootstrap-data -n "__fish_bootstrap_data_using_subcommand help; and not __fish_seen_subcommand_from backup restore status snapshots verify forget help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
