{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:279f86c90d2b86d49025c643ae8b300fa5affa47f82645e8f9caafc72eb1e3e6",
  "signature": "Cll6/pzUmMYR2p/7a9f68ty+eHCTO0ofaXMSl12xY7nWn4+pEF6PkbRa0aw1GIlulCz69DsG+0UPtmTvU46mBA=="
}
