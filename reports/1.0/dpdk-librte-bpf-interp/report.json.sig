{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:ac8ec312b67119bb57c913ca3cfd8aeb8b55ea0696df507f135ffd5c0e8c8d18",
  "signature": "gbHC+G8H9SOnuqRsfBkX+SXKuz6iaeDHV9A3/pJmFceiKet1qXm1LHJ5b5/t3eM9abUTxbGe1O5A1D/tzSaTDQ=="
}
