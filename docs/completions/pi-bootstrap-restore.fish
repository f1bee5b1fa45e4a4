complete -c pi-bootstrap-restore -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c pi-bootstrap-restore -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c pi-bootstrap-restore -l from -d 'Start from this step; the ones before it are taken as done' -r -f -a "bootstrap-prereqs\t''
bootstrap-pi-config\t''
bootstrap-services\t''
bootstrap-data\t''
bootstrap-validate\t''"
complete -c pi-bootstrap-restore -l to -d 'Stop after this step; the ones after it are left for a later run (`--from` the next one), as when the first steps need the network and the rest run elsewhere' -r -f -a "bootstrap-prereqs\t''
bootstrap-pi-config\t''
bootstrap-services\t''
bootstrap-data\t''
bootstrap-validate\t''"
complete -c pi-bootstrap-restore -l bin-dir -d 'The folder of the step binaries. Default: the folder this program is in, so an installed set runs itself' -r -F
complete -c pi-bootstrap-restore -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c pi-bootstrap-restore -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c pi-bootstrap-restore -s v -l verbose -d 'Also list the commands the run ran'
complete -c pi-bootstrap-restore -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c pi-bootstrap-restore -l resume -d 'Continue from the step where the last restore stopped (recorded in ~/.local/state/pi-bootstrap/restore.json)'
complete -c pi-bootstrap-restore -s h -l help -d 'Print help'
complete -c pi-bootstrap-restore -s V -l version -d 'Print version'
