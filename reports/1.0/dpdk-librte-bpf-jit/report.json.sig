{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:f5953bf7cd3e86d5c6271d9dc418577399e90518c68ecea2ef994dea37ed0742",
  "signature": "07vBQjTiEuA4xGRimAJOGN+2bz4aj1wAZhcu5dIaurXXn1pOA/LJZvcQdJpwfo7+7dxLGhuuTtqUR9yvt1BIDQ=="
}
