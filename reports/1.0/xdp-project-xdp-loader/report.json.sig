{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:2c3e97f327ee4c4c90da19f1d33bff6c05f977e96f8e0d3e72f96dc4ec8a990e",
  "signature": "4an/mJ3Zn2UXVgg+W2p9FVOZsxO7Qz9A2prXODEDNmNWfIxU2HLt0CfmH78BVaVW83QT0joo11C3ZujW7mjzCw=="
}
