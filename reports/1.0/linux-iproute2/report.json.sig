{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:546550f5fc5e58122d28cba8186f9f5e0644841b68e1aded58a56a0a0944c42f",
  "signature": "1UUOu86q4MlwRSzMrOy/nwehMbmg1XK2nDeH/HKN+3ixzTFkjiLV+t9xswnaTyE94LShZTdJRKJyQiLqKryTBg=="
}
