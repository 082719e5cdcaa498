{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:e19914315cb28fc0caa43dcc2b7adf196398e4f80d066ddd54ed976e881f0213",
  "signature": "hAmewptTnUBqZUTDcQNTpk8k91zJpdG7UpQMBIfBb+DiM48vGAx+Lm6m4b0jU+hkrysL/46URiyYBuKVFQUwDg=="
}
