from harness.cli import entry_point

raise SystemExit(entry_point())
