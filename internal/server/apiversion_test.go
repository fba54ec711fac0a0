package server

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestPreviewAPIVersion drives the keys API with azkeys set to the api-version the current
// preview SDKs send (azkeys v1.6.0-beta.1, azadmin: 2026-01-01-preview), which Coffer
// answers, and to previews no SDK sends, which stay 400 BadParameter in Key Vault's words.
func TestPreviewAPIVersion(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	client := func(version string) *azkeys.Client {
		cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
		c, err := azkeys.NewClient(ts.Dev.Credentials.VaultURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc, APIVersion: version}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	preview := client("2026-01-01-preview")
	if _, err := preview.CreateKey(ctx, "pv", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)}, nil); err != nil {
		t.Fatalf("CreateKey with 2026-01-01-preview = %v", err)
	}
	if k, err := preview.GetKey(ctx, "pv", "", nil); err != nil || k.Key == nil || *k.Key.Crv != azkeys.CurveNameP256 {
		t.Errorf("GetKey with 2026-01-01-preview = %v, %v", k, err)
	}
	if page, err := preview.NewListKeyPropertiesPager(nil).NextPage(ctx); err != nil || len(page.Value) != 1 {
		t.Errorf("list keys with 2026-01-01-preview = %v, %v; want the one key", page.Value, err)
	}

	for _, v := range []string{"2026-02-01-preview", "2026-01-01-preview.1", "2026-01-01-PREVIEW", "7.6-preview.2"} {
		_, err := client(v).GetKey(ctx, "pv", "", nil)
		wantCode(t, err, 400, "BadParameter")
	}
}
