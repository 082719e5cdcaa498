{
  "format": "bpfcert-report-signature/1",
  "algorithm": "ed25519",
  "publicKey": "0xlxPN8CnRxfYNxc0PQ5X6wW1/e6HrDYsO+JhjTURzM=",
  "digest": "sha256:3e546d81159820cf16869338d27c1cc1574f9bedad3414868679a81875fc2275",
  "signature": "ZjFKyrxXuraVEoBsYAUi9M2j23X3traRK0Vngp8L75w9axA5VQNtDxB4IJx7gcc4o4VG3lSLhzfQPtrfoVwMBQ=="
}
