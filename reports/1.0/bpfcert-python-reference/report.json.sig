{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:c4b0e4cf7ab6ca95ec3d179f49bec89cc8dc6bfb15edd9493bf2db2a5d469fe1",
  "signature": "x+7W4RYrp2m8q0nJ7RRZwZy9gG7+yNZU4eRy9MDLOrx48mQ6RmKQWVCtRdIYN4BOZTs9BL+0LdSC1wzPN5dDDw=="
}
