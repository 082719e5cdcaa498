{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:204fd1f230b0d9d8f91c18ecc0921ce87b2b1472e446a0f97ae49f23356e180d",
  "signature": "fp0hmZVAZS+HAZNwq71uXESo07KQtvUNvuUmjQDZjFo2zQRdkJKZzOGtE6QILWgYDOhO26YNq/I2JG+xx4U7Dg=="
}
