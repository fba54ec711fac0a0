package providertest

import (
	"encoding/json"
	"os"
	"testing"
)

// WycheproofFile is a Wycheproof vector file (C2SP/wycheproof testvectors_v1), with the
// members the project's harnesses read. Byte fields are hex; keys come as JWKs, as a hex
// dictionary (PublicKey, PrivateKey) or as PKCS #8 DER in hex.
type WycheproofFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []WycheproofGroup `json:"testGroups"`
}

// WycheproofGroup is a test group: a key and the parameters its tests share.
type WycheproofGroup struct {
	KeySize         int              `json:"keySize"`
	Sha             string           `json:"sha"`
	MgfSha          string           `json:"mgfSha"`
	SLen            *int             `json:"sLen"`
	IVSize          int              `json:"ivSize"`
	TagSize         int              `json:"tagSize"`
	PublicKey       json.RawMessage  `json:"publicKey"`
	PrivateKey      json.RawMessage  `json:"privateKey"`
	KeyJwk          json.RawMessage  `json:"keyJwk"`
	PublicKeyJwk    json.RawMessage  `json:"publicKeyJwk"`
	PrivateKeyJwk   json.RawMessage  `json:"privateKeyJwk"`
	PrivateKeyPkcs8 string           `json:"privateKeyPkcs8"`
	Tests           []WycheproofTest `json:"tests"`
}

// WycheproofTest is one vector: its result is "valid", "invalid" or "acceptable".
type WycheproofTest struct {
	TcID    int             `json:"tcId"`
	Comment string          `json:"comment"`
	Flags   []string        `json:"flags"`
	Result  string          `json:"result"`
	Msg     string          `json:"msg"`
	Ct      string          `json:"ct"`
	Sig     string          `json:"sig"`
	Label   string          `json:"label"`
	Key     string          `json:"key"`
	IV      string          `json:"iv"`
	AAD     string          `json:"aad"`
	Tag     string          `json:"tag"`
	Public  json.RawMessage `json:"public"`
	Private json.RawMessage `json:"private"`
}

// LoadWycheproof reads the vector file at path and checks that its groups hold as many
// tests as its numberOfTests says, so that a harness counting cases per file counts all.
func LoadWycheproof(t testing.TB, path string) *WycheproofFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f WycheproofFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	n := 0
	for _, g := range f.TestGroups {
		n += len(g.Tests)
	}
	if n != f.NumberOfTests {
		t.Fatalf("%s: %d tests in the groups, numberOfTests says %d", path, n, f.NumberOfTests)
	}
	return &f
}
