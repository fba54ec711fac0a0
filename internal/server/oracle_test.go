package server

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
)

// Decrypt and unwrap oracles over HTTPS (SECURITY-NOTES C1–C3): every class of bad
// ciphertext — the Wycheproof invalid cases, random ciphertexts, wrong lengths, values ≥ n,
// bad PKCS #1 v1.5 / OAEP / PKCS #7 padding, bad KW/KWP integrity, another key's or another
// algorithm's ciphertext — must get byte-identical answers: same status, same headers
// (but Date), same body. The comparison spans soft RSA, RSA-HSM and oct-HSM keys and every
// algorithm, per operation (decrypt and unwrapKey name themselves in the message).
//
// The expected outcome of every synthetic ciphertext comes from a local computation with
// the key the test imported (crypto/rsa, crypto/aes, internal/keywrap), so a random
// ciphertext that happens to be valid is expected to decrypt, and a token that accepted
// something the reference refuses would be caught.
//
// Ciphertexts whose length no encryption under the algorithm produces (CBC not a non-zero
// multiple of 16; KW/KWP not a multiple of 8 or shorter than 24/16) are refused before the
// key is used, with a message that says what length is needed. That answer depends only on
// the public length, never on the key, so it is held to its own rule: identical for every
// key and content of that (operation, algorithm), and never the decryption failure's answer
// (shapeAnswers). An RSA ciphertext of the wrong length gets the decryption failure itself.

// answer is what a client can compare between two responses.
type answer struct {
	status int
	header string // every header but the per-request ones, sorted
	body   []byte
}

// perRequestHeaders differ between any two responses whatever their data; nothing else may.
var perRequestHeaders = map[string]bool{"Date": true, "X-Ms-Request-Id": true, "X-Ms-Client-Request-Id": true}

func answerOf(resp *http.Response, body []byte) answer {
	var lines []string
	for k, v := range resp.Header {
		if !perRequestHeaders[k] {
			lines = append(lines, k+": "+strings.Join(v, ", "))
		}
	}
	sort.Strings(lines)
	return answer{status: resp.StatusCode, header: strings.Join(lines, "\n"), body: body}
}

func (a answer) equal(b answer) bool {
	return a.status == b.status && a.header == b.header && bytes.Equal(a.body, b.body)
}

func (a answer) String() string { return fmt.Sprintf("%d\n%s\n%s", a.status, a.header, a.body) }

// value returns the decoded "value" of a successful operation.
func (a answer) value() ([]byte, bool) {
	var out struct{ Value string }
	if a.status != 200 || json.Unmarshal(a.body, &out) != nil {
		return nil, false
	}
	v, err := base64.RawURLEncoding.DecodeString(out.Value)
	return v, err == nil
}

// oracleClient posts key operations to the dev vault with raw HTTP, so nothing between
// the wire and the comparison normalises the response.
type oracleClient struct {
	hc  *http.Client
	url string
	tok string
}

func newOracleClient(t *testing.T, ts *testServer) *oracleClient {
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	status, tok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, ts.resources().Base())
	if status != 200 {
		t.Fatalf("token = %d", status)
	}
	return &oracleClient{hc: hc, url: c.VaultURL, tok: tok}
}

func (c *oracleClient) do(t *testing.T, method, path string, body any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, c.url+path+"?api-version=7.6", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answerOf(resp, raw)
}

// op runs decrypt or unwrapkey on key name with alg, value and (for CBC) iv.
func (c *oracleClient) op(t *testing.T, op, name, alg string, value, iv []byte) answer {
	t.Helper()
	body := map[string]string{"alg": alg, "value": base64.RawURLEncoding.EncodeToString(value)}
	if iv != nil {
		body["iv"] = base64.RawURLEncoding.EncodeToString(iv)
	}
	return c.do(t, "POST", "/keys/"+name+"/"+op, body)
}

var oracleOps = []string{"decrypt", "unwrapkey"}

// oracle holds, per operation, the first failure's answer and checks every later failure
// against it; it counts failures by class for the log.
type oracle struct {
	want   map[string]answer
	from   map[string]string
	counts map[string]int
	shapes shapeAnswers
	calls  int
	others map[int]*rsa.PrivateKey // the "other-key" RSA keys by size (otherKey)
}

func newOracle() *oracle {
	return &oracle{want: map[string]answer{}, from: map[string]string{}, counts: map[string]int{}, shapes: shapeAnswers{}, others: map[int]*rsa.PrivateKey{}}
}

// expect checks one response: the expected plaintext when ok, else the uniform failure.
func (o *oracle) expect(t *testing.T, op, class string, a answer, want []byte, ok bool) {
	t.Helper()
	o.calls++
	if ok {
		if got, good := a.value(); !good || !bytes.Equal(got, want) {
			t.Errorf("%s %s: %s; want 200 with %x", op, class, a, want)
		}
		return
	}
	o.failed(t, op, class, a)
}

func (o *oracle) failed(t *testing.T, op, class string, a answer) {
	t.Helper()
	if a.status != http.StatusBadRequest {
		t.Errorf("%s %s: %s; want 400", op, class, a)
		return
	}
	w, seen := o.want[op]
	if !seen {
		o.want[op], o.from[op] = a, class
	} else if !a.equal(w) {
		t.Errorf("%s %s answered\n%s\nwant the same bytes as %s:\n%s", op, class, a, o.from[op], w)
	}
	o.counts[op+" "+class]++
}

// shapeAnswers: per (operation, algorithm), the one answer to a ciphertext of a length the
// algorithm never produces.
type shapeAnswers map[string]answer

func (o *oracle) shape(t *testing.T, op, alg, class string, a answer) {
	t.Helper()
	o.calls++
	k := op + " " + alg
	if a.status != http.StatusBadRequest {
		t.Errorf("%s %s %s (length refused by shape): %s; want 400", op, alg, class, a)
	} else if w, ok := o.shapes[k]; !ok {
		o.shapes[k] = a
	} else if !a.equal(w) {
		t.Errorf("%s %s %s: the length refusal answered\n%s\nwant the same for every length and key:\n%s", op, alg, class, a, w)
	}
	if f, ok := o.want[op]; ok && a.equal(f) {
		t.Errorf("%s %s %s: a length refusal answered like a decryption failure", op, alg, class)
	}
	o.counts[op+" "+class+" (shape)"]++
}

// report logs the classes seen and fails if an operation never failed.
func (o *oracle) report(t *testing.T) {
	var classes []string
	total := 0
	for c, n := range o.counts {
		classes = append(classes, fmt.Sprintf("%5d  %s", n, c))
		total += n
	}
	sort.Strings(classes)
	for _, op := range oracleOps {
		if _, ok := o.want[op]; !ok {
			t.Errorf("no %s failure was seen", op)
			continue
		}
		t.Logf("%s: every failure answered %d with %s", op, o.want[op].status, o.want[op].body)
	}
	for k, a := range o.shapes {
		t.Logf("%s: every length refused by shape answered %d with %s", k, a.status, a.body)
	}
	t.Logf("%d calls, %d failures in %d classes:\n%s", o.calls, total, len(classes), strings.Join(classes, "\n"))
}

// softHSMFlags makes a SoftHSM2 token for the server, or returns nil when SoftHSM2 is not
// installed (the soft-key part of the test still runs).
func softHSMFlags(t *testing.T) []string {
	t.Helper()
	tok, err := softhsm.Init(t.TempDir(), "4321", "8765", "coffer")
	if errors.Is(err, softhsm.ErrNotInstalled) {
		t.Logf("%v: the RSA-HSM and oct-HSM parts are skipped", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.Conf)
	return []string{"--pkcs11-library", softhsmLib, "--pkcs11-token-label", "coffer", "--pkcs11-pin-file", tok.PINFile}
}

// TestDecryptOraclesThroughHTTP runs the Wycheproof RSA, AES-CBC-PKCS5, AES-KW and AES-KWP
// vectors and the synthetic failure classes through POST .../decrypt and .../unwrapkey
// over HTTPS: valid ciphertexts decrypt to the expected bytes, and every failure gets the
// same answer (see the top of this file).
func TestDecryptOraclesThroughHTTP(t *testing.T) {
	flags := softHSMFlags(t)
	ts := startDev(t, flags...)
	c := newOracleClient(t, ts)
	o := newOracle()
	t.Run("RSA", func(t *testing.T) { runRSAOracle(t, c, o, softRSAImport(c)) })
	if flags == nil {
		t.Run("RSA-HSM", func(t *testing.T) { t.Skip("SoftHSM2 is not installed") })
		t.Run("oct-HSM", func(t *testing.T) { t.Skip("SoftHSM2 is not installed") })
	} else {
		ctx := context.Background()
		kc := keysClient(t, ts)
		kek, kid := createKEK(t, kc, "oracle-kek")
		t.Run("RSA-HSM", func(t *testing.T) { runRSAOracle(t, c, o, hsmRSAImport(ctx, kc, kek, kid)) })
		t.Run("oct-HSM", func(t *testing.T) { runAESOracle(t, c, o, hsmAESImport(ctx, kc, kek, kid)) })
	}
	o.report(t)
}

// importKeyHSM imports target (PKCS #8 or raw AES bytes) as kty through BYOK.
func importKeyHSM(ctx context.Context, kc *azkeys.Client, kty azkeys.KeyType, name string, blob []byte) error {
	_, err := kc.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: &kty, T: blob}}, nil)
	return err
}
