{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:8690b985f529648bb3078c4ea7a5710e25faca43174072c3591bd8c4c063540d",
  "signature": "gbdrOeQzF2tT4NKf8LRAmZYHcolKZBJhb0bQnj7UUs6CRolNflqsPmfYr/Q5wObSetZUfEpjYjy/sEcgvugMCQ=="
}
