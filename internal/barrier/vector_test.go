package barrier

// recordVectorHex is a format-v1 record sealed by an earlier build: key bytes 0x00..0x1f,
// term 1, path "tenants/t1/secrets/s1", plaintext "coffer format v1".
const recordVectorHex = "0000000101acf6a44ad50f568783c68587441cd51f8bcdcad70e4e8b5ac819a2287f5d5516d010463c4acfa06dce2a235f"
