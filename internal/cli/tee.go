package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/provider"
)

// teeSimOptions are the inputs of `coffer tee sim`.
type teeSimOptions struct {
	credentials, provider, simKey, key, measurement, allow string
	create                                                 bool
}

// devCreds is the part of dev mode's dev-credentials.json the TEE simulator needs.
type devCreds struct {
	TenantID      string `json:"tenantId"`
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret"`
	AuthorityHost string `json:"authorityHost"`
	VaultURL      string `json:"vaultUrl"`
	CAFile        string `json:"caFile"`
}

func newTeeCmd() *cobra.Command {
	var o teeSimOptions
	sim := &cobra.Command{
		Use:   "sim --credentials FILE --provider URL --sim-key FILE --measurement HEX [--key NAME]",
		Short: "Play a simulated TEE: attest, get a key released through azkeys, unwrap and use it",
		Long: `Play a trusted execution environment (TEE) against a dev server (docs/ATTESTATION.md):

  1. make an RSA-2048 runtime key pair (it never leaves this process);
  2. make sim evidence for --measurement (96 hex digits: the "code" of the TEE) that binds
     the runtime public key, signed with the simulator key (--sim-key, dev mode's
     attest-sim-key.UNSAFE.pem);
  3. get an attestation token from the attestation provider (--provider URL);
  4. call Key Vault's release through the official azkeys client (credentials from dev
     mode's dev-credentials.json) for --key;
  5. unwrap the released key with the runtime private key, sign with it, and check the
     signature with the vault key's public JWK.

With --create-key the key is first created (if absent) as an exportable EC P-256 key whose
release policy asks the provider for --allow-measurement (default: --measurement).
A TEE whose measurement the policy does not name is denied: the command fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return teeSim(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := sim.Flags()
	f.StringVar(&o.credentials, "credentials", "", "dev mode's dev-credentials.json (tenant, client id and secret, vault URL, CA file)")
	f.StringVar(&o.provider, "provider", "", "attestation provider URL, e.g. https://teeprov.attest.localhost:8443")
	f.StringVar(&o.simKey, "sim-key", "", "PEM private key of the TEE simulator (dev mode: <data-dir>/attest-sim-key.UNSAFE.pem)")
	f.StringVar(&o.key, "key", "tee-key", "name of the exportable key to release")
	f.StringVar(&o.measurement, "measurement", "", "the simulated TEE's launch measurement: 96 hex digits")
	f.BoolVar(&o.create, "create-key", false, "create the key first if it does not exist")
	f.StringVar(&o.allow, "allow-measurement", "", "with --create-key: the measurement the release policy allows (default --measurement)")
	cmd := &cobra.Command{Use: "tee", Short: "Trusted execution environment tools (simulator)"}
	cmd.AddCommand(sim)
	return cmd
}

func teeSim(ctx context.Context, o teeSimOptions, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.credentials == "" || o.provider == "" || o.simKey == "" || o.measurement == "" {
		return errors.New("--credentials, --provider, --sim-key and --measurement are required")
	}
	meas, err := parseMeasurement(o.measurement)
	if err != nil {
		return err
	}
	var c devCreds
	b, err := os.ReadFile(o.credentials)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("--credentials: %w", err)
	}
	hc, err := loopbackHTTPS(c.CAFile)
	if err != nil {
		return err
	}
	simKey, err := readECKey(o.simKey)
	if err != nil {
		return fmt.Errorf("--sim-key: %w", err)
	}
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}, Transport: hc}, DisableInstanceDiscovery: true})
	if err != nil {
		return err
	}
	kc, err := azkeys.NewClient(c.VaultURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		return err
	}
	if o.create {
		if err := ensureReleasableKey(ctx, kc, o); err != nil {
			return err
		}
	}

	// 1–3: runtime key, evidence, token.
	runtimeKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	e := base64.RawURLEncoding
	rt, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "tee-runtime", "key_ops": []string{"encrypt"},
		"n": e.EncodeToString(runtimeKey.N.Bytes()), "e": e.EncodeToString(big.NewInt(int64(runtimeKey.E)).Bytes())}}})
	report, err := attest.SimReport(simKey, meas, attest.ReportData(rt), false)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(attest.Request{Report: e.EncodeToString(report), RuntimeData: &attest.RuntimeData{Data: e.EncodeToString(rt), DataType: "JSON"}})
	resp, err := hc.Post(strings.TrimSuffix(o.provider, "/")+"/attest/sim?api-version=2022-08-01", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var tok attest.Response
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &tok) != nil || tok.Token == "" {
		return fmt.Errorf("attestation refused: %d %s", resp.StatusCode, raw)
	}
	fmt.Fprintf(out, "attested: measurement %s… token from %s\n", o.measurement[:16], o.provider)

	// 4: release.
	rel, err := kc.Release(ctx, o.key, "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(tok.Token)}, nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			return fmt.Errorf("release denied: %d %s", re.StatusCode, re.ErrorCode)
		}
		return fmt.Errorf("release: %w", err)
	}
	// 5: unwrap inside the TEE and use the key.
	priv, kid, err := openRelease(*rel.Value, runtimeKey)
	if err != nil {
		return err
	}
	pub, err := kc.GetKey(ctx, o.key, "", nil)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("signed inside the simulated TEE"))
	if err := signAndCheck(priv, pub.Key, digest[:]); err != nil {
		return err
	}
	fmt.Fprintf(out, "released: %s unwrapped inside the TEE; a signature made with it verifies with the vault key\n", kid)
	return nil
}

func parseMeasurement(s string) ([attest.MeasurementLen]byte, error) {
	var m [attest.MeasurementLen]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(m) {
		return m, fmt.Errorf("a measurement is %d hex digits", 2*len(m))
	}
	copy(m[:], b)
	return m, nil
}

// ensureReleasableKey creates o.key as an exportable EC P-256 key with a release policy for
// the allowed measurement, unless it exists.
func ensureReleasableKey(ctx context.Context, kc *azkeys.Client, o teeSimOptions) error {
	if _, err := kc.GetKey(ctx, o.key, "", nil); err == nil {
		return nil
	}
	allow := o.allow
	if allow == "" {
		allow = o.measurement
	}
	if _, err := parseMeasurement(allow); err != nil {
		return fmt.Errorf("--allow-measurement: %w", err)
	}
	policy := `{"version":"1.0.0","anyOf":[{"authority":"` + strings.TrimSuffix(o.provider, "/") + `","allOf":[` +
		`{"claim":"x-ms-attestation-type","equals":"sim"},{"claim":"x-ms-sim-launchmeasurement","equals":"` + strings.ToLower(allow) + `"}]}]}`
	_, err := kc.CreateKey(ctx, o.key, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256),
		KeyAttributes: &azkeys.KeyAttributes{Exportable: to.Ptr(true)}, ReleasePolicy: &azkeys.KeyReleasePolicy{EncodedPolicy: []byte(policy)}}, nil)
	return err
}

// openRelease reads the release JWS payload (its signature is the vault's; a TEE that wants
// to check it fetches the provider's /certs) and unwraps key_hsm with the runtime key.
func openRelease(jws string, runtimeKey *rsa.PrivateKey) (crypto.Signer, string, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, "", errors.New("the release result is not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, "", err
	}
	var p struct {
		Response struct {
			Key struct {
				Key struct {
					KID    string `json:"kid"`
					KeyHSM string `json:"key_hsm"`
				} `json:"key"`
			} `json:"key"`
		} `json:"response"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, "", err
	}
	rawBlob, err := base64.RawURLEncoding.DecodeString(p.Response.Key.Key.KeyHSM)
	if err != nil {
		return nil, "", err
	}
	var blob byok.Blob
	if err := json.Unmarshal(rawBlob, &blob); err != nil {
		return nil, "", err
	}
	h, ok := provider.TransferHash(blob.Header.Enc)
	if !ok {
		return nil, "", fmt.Errorf("unknown key_hsm enc %q", blob.Header.Enc)
	}
	ct, err := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
	if err != nil {
		return nil, "", err
	}
	der, err := byok.Open(runtimeKey, h, ct)
	if err != nil {
		return nil, "", err
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, "", err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, "", errors.New("the released key cannot sign")
	}
	return signer, p.Response.Key.Key.KID, nil
}

// signAndCheck signs digest with the released key and verifies it with the vault's JWK.
func signAndCheck(priv crypto.Signer, jwk *azkeys.JSONWebKey, digest []byte) error {
	sig, err := priv.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		return err
	}
	ok := false
	switch k := priv.Public().(type) {
	case *ecdsa.PublicKey:
		vk := &ecdsa.PublicKey{Curve: k.Curve, X: new(big.Int).SetBytes(jwk.X), Y: new(big.Int).SetBytes(jwk.Y)}
		ok = ecdsa.VerifyASN1(vk, digest, sig)
	case *rsa.PublicKey:
		vk := &rsa.PublicKey{N: new(big.Int).SetBytes(jwk.N), E: int(new(big.Int).SetBytes(jwk.E).Int64())}
		ok = rsa.VerifyPKCS1v15(vk, crypto.SHA256, digest, sig) == nil
	}
	if !ok {
		return errors.New("the released key is not the vault key: its signature does not verify")
	}
	return nil
}

func readECKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

// loopbackHTTPS trusts caFile and dials every *.localhost host at 127.0.0.1, so dev mode's
// vault (<vault>.localhost) and provider (<p>.attest.localhost) hosts work without DNS.
func loopbackHTTPS(caFile string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("CA file: no certificate")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}
