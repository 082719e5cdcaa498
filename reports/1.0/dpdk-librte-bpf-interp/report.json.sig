{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:772bc0e39dbfe48d5868ac07432049ca775e43e8c00e1c3a1936c69630061c42",
  "signature": "kwepyBSj2fPE0N4UKsJPqsT2eg68I6wfWXTXRui5uPtLmdsY7DxYe0HtyXDdpkYiPTG3EhX1Q4Oa06J58B5wBg=="
}
