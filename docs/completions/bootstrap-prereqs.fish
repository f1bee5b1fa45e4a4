complete -c bootstrap-prereqs -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-prereqs -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-prereqs -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-prereqs -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-prereqs -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-prereqs -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-prereqs -l deep -d 'Run every check command, even for a tool whose binary is unchanged since its version was last read (the cache in the state folder is still refreshed)'
complete -c bootstrap-prereqs -s h -l help -d 'Print help'
complete -c bootstrap-prereqs -s V -l version -d 'Print version'
