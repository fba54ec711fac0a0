package barrier

// recordVectorHex is a format-v1 record sealed by an earlier build: key bytes 0x00..0x1f,
// term 1, path "tenants/t1/secrets/s1", plaintext "coffer format v1".
const recordVectorHex = "0000000101acf6a44ad50f568783c68587441cd51f8bcdcad70e4e8b5ac819a2287f5d5516d010463c4acfa06dce2a235f"

// storeStateVectorHex is the plaintext of a store state (docs/FORMAT.md, "Store state") at
// generation 7 holding one record, recordVectorHex at its path, with the hash key derived
// from term 1 key bytes 0x00..0x1f. It was computed from the specification alone, with
// Python's hmac and hashlib (HKDF written out as extract and one expand block).
const storeStateVectorHex = "636f666665722d73746f72652d73746174652f7631000000000000000007000000000000000151c47ce0f83d346c83daedeb19ac313fe11487c5776849339bfc170cae78d49f"
