from bpfcert.cli import main

raise SystemExit(main())
