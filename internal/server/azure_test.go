package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// loopbackClient is an HTTPS client that trusts caFile and dials every host (v1.localhost,
// p.managedhsm.localhost, …) at 127.0.0.1, so the SDK's challenge resource check stays on.
func loopbackClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 30 * time.Second, Transport: &recordingTransport{next: loopbackTransport(t, caFile), rec: c9For(t)}}
}

// loopbackTransport is loopbackClient's transport.
func loopbackTransport(t testing.TB, caFile string) *http.Transport {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return trackTransport(t, &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	})
}

func devCredential(t *testing.T, ts *testServer, secret string) (azcore.TokenCredential, *http.Client) {
	t.Helper()
	return principalCredential(t, ts, ts.Dev.Credentials.ClientID, secret)
}

// principalCredential is an azidentity credential of a service principal of the dev tenant.
func principalCredential(t *testing.T, ts *testServer, clientID, secret string) (azcore.TokenCredential, *http.Client) {
	t.Helper()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred, hc
}

func TestAzureSDKAuthenticatesThroughChallenge(t *testing.T) {
	ts := startDev(t)
	c := ts.Dev.Credentials
	if c.ClientSecret == "" || c.TenantID == "" || c.ManagedHSMURL == "" {
		t.Fatalf("dev credentials incomplete: %+v", c)
	}
	cred, hc := devCredential(t, ts, c.ClientSecret)
	ctx := context.Background()

	tok, err := cred.GetToken(ctx, policyFor(ts.resources().Base()))
	if err != nil || tok.Token == "" {
		t.Fatalf("azidentity GetToken = %v", err)
	}

	client, err := azkeys.NewClient(c.ManagedHSMURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int32{1, 32, 128} {
		resp, err := client.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(n)}, nil)
		if err != nil {
			t.Fatalf("GetRandomBytes(%d) = %v", n, err)
		}
		if len(resp.Value) != int(n) {
			t.Errorf("GetRandomBytes(%d) returned %d bytes", n, len(resp.Value))
		}
	}
	_, err = client.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(129))}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
		t.Errorf("GetRandomBytes(129) = %v; want 400 BadParameter", err)
	}

	// A wrong secret gets no token, so no data.
	bad, hc2 := devCredential(t, ts, c.ClientSecret+"x")
	badClient, _ := azkeys.NewClient(c.ManagedHSMURL, bad, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc2}})
	if _, err := badClient.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(8))}, nil); err == nil {
		t.Error("GetRandomBytes with a wrong client secret succeeded")
	}
}
