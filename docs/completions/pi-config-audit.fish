complete -c pi-config-audit -l manifest -d 'The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml in the current folder or a folder above it' -r -F
complete -c pi-config-audit -l only -d 'Only this item (an id such as link:pi-settings); repeatable' -r
complete -c pi-config-audit -l check -d 'Observe only: change nothing, show what would change (exit 1 if anything would)'
complete -c pi-config-audit -l json -d 'Print one JSON document on stdout instead of the human report'
complete -c pi-config-audit -s v -l verbose -d 'Also list the commands the run ran'
complete -c pi-config-audit -s q -l quiet -d 'Show only what is not ok, and the recap'
complete -c pi-config-audit -l fetch -d 'Fetch the pi-config repo\'s branch first (the only thing the audit writes: the remote-tracking ref); without it, the repo is compared with its remote as last fetched, offline'
complete -c pi-config-audit -l deep -d 'Ask the restic repository for backup freshness, and run every prerequisite\'s check command; without it, the local record that bootstrap-data backup, restore and verify write answers when there is one (a snapshot made by anything else since shows only with --deep), and a version found before is taken from the cache while its binary is unchanged'
complete -c pi-config-audit -s h -l help -d 'Print help'
complete -c pi-config-audit -s V -l version -d 'Print version'
