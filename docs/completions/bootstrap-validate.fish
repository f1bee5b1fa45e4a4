complete -c bootstrap-validate -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c bootstrap-validate -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c bootstrap-validate -l junit -d 'Also write the results as JUnit XML to FILE (for CI)' -r -F
complete -c bootstrap-validate -l timeout -d 'How long a check may take when the manifest sets no timeout for it' -r
complete -c bootstrap-validate -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c bootstrap-validate -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c bootstrap-validate -s v -l verbose -d 'Also list the commands the run ran'
complete -c bootstrap-validate -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c bootstrap-validate -s h -l help -d 'Print help'
complete -c bootstrap-validate -s V -l version -d 'Print version'
