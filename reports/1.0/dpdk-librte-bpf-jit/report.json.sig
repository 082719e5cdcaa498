{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:90a2002f282979071741bdc23342b562be10b0223c6301238d11317e21f040c5",
  "signature": "nePyyCOUH3/nHaL/263NYeu1NAJ6qfjDjKh2hzCjwj/wrI9DVVKZ0qjsG3j2uMw5xM0+AKgp8/LkJ+WO1LfdDg=="
}
