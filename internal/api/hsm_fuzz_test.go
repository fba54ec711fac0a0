package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// memBackups is a BackupStore in memory holding at most 64 folders (the fuzzer makes a
// backup with every body POST /backup accepts); the first folder is kept.
type memBackups struct {
	mu      sync.Mutex
	first   string
	folders map[string][]byte
}

func (m *memBackups) Write(_ context.Context, tenantID, container, folder string, blob []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := tenantID + "/" + container + "/" + folder
	if m.first == "" {
		m.first = k
	}
	for old := range m.folders {
		if len(m.folders) < 64 {
			break
		}
		if old != m.first {
			delete(m.folders, old)
		}
	}
	m.folders[k] = bytes.Clone(blob)
	return nil
}

func (m *memBackups) Read(_ context.Context, tenantID, container, folder string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.folders[tenantID+"/"+container+"/"+folder]
	if !ok {
		return nil, ErrBackupNotFound
	}
	return b, nil
}

// FuzzHSMRequestBodies sends arbitrary bodies to every managed HSM operation that reads one
// (security domain download and upload, full backup, full and selective restore, role
// assignments and definitions, random bytes) through the real handlers, key service,
// security domain and tenancy store: never a 5xx or a panic.
func FuzzHSMRequestBodies(f *testing.F) {
	ctx := context.Background()
	store := mem.New()
	const tid = "00000000-0000-4000-8000-000000000001"
	tenants := tenancy.New(store, nil)
	if _, err := tenants.CreateTenant(ctx, tid, "fuzz"); err != nil {
		f.Fatal(err)
	}
	principal, _, err := tenants.CreateServicePrincipal(ctx, tid, "app")
	if err != nil {
		f.Fatal(err)
	}
	sd := secdomain.New(store, nil)
	sd.TransferKeyBits = 2048
	active := tenancy.Vault{Name: "p1", Kind: tenancy.KindManagedHSM, TenantID: tid}
	inactive := tenancy.Vault{Name: "p2", Kind: tenancy.KindManagedHSM, TenantID: tid}
	if err := sd.ActivateDev(ctx, active); err != nil {
		f.Fatal(err)
	}
	if _, err := sd.TransferKey(ctx, inactive); err != nil {
		f.Fatal(err)
	}
	ks := keys.NewService(store, soft.New(), nil, bytes.Repeat([]byte{7}, 32))
	ks.SealPoolBackupsWith(sd.BackupKey)
	if _, err := ks.Create(ctx, active, "https://p1.managedhsm.localhost", "k1", keys.CreateParams{Kty: "EC"}); err != nil {
		f.Fatal(err)
	}
	backups := &memBackups{folders: map[string][]byte{}}
	routes := map[string]Route{}
	for _, rs := range [][]Route{
		(&SecurityDomain{Svc: func() (*secdomain.Service, error) { return sd, nil }}).Routes(),
		(&HSMBackup{Keys: func() (*keys.Service, error) { return ks, nil }, SD: func() (*secdomain.Service, error) { return sd, nil }, Store: backups}).Routes(),
		(&HSMRBAC{Store: tenants}).Routes(),
		{{Pattern: "POST /rng", Handle: GetRandomBytes}},
	} {
		for _, rt := range rs {
			routes[rt.Pattern] = rt
		}
	}
	type op struct {
		pattern, path string
		pool          tenancy.Vault
		values        map[string]string
	}
	const guid = "6f7d4a1e-0000-4000-8000-00000000000b"
	ops := []op{
		{"POST /securitydomain/download", "/securitydomain/download", active, nil},
		{"POST /securitydomain/upload", "/securitydomain/upload", inactive, nil},
		{"POST /backup", "/backup", active, nil},
		{"PUT /restore", "/restore", active, nil},
		{"PUT /keys/{name}/restore", "/keys/k1/restore", active, map[string]string{"name": "k1"}},
		{"PUT " + assignmentsPath + "/{id}", assignmentsPath + "/" + guid, active, map[string]string{"id": guid}},
		{"PUT /keys/{name}" + assignmentsPath + "/{id}", "/keys/k1" + assignmentsPath + "/" + guid, active, map[string]string{"id": guid, "name": "k1"}},
		{"PUT " + definitionsPath + "/{id}", definitionsPath + "/" + guid, active, map[string]string{"id": guid}},
		{"POST /rng", "/rng", active, nil},
	}
	do := func(o op, body string) (int, []byte, error) {
		req := httptest.NewRequest("POST", "https://"+o.pool.Name+".managedhsm.localhost"+o.path+"?api-version=7.6", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range o.values {
			req.SetPathValue(k, v)
		}
		w := httptest.NewRecorder()
		call := &Call{Store: o.pool, StoreURL: "https://" + o.pool.Name + ".managedhsm.localhost", Caller: Caller{TenantID: tid, ObjectID: principal.ObjectID}}
		err := routes[o.pattern].Handle(w, req, call)
		return w.Code, w.Body.Bytes(), err
	}
	sas := `{"storageResourceUri":"https://account.blob.core.windows.net/backups","token":"sv=x","useManagedIdentity":false}`
	status, out, err := do(ops[2], sas)
	var st struct {
		URI string `json:"azureStorageBlobContainerUri"`
	}
	if err != nil || status != 202 || json.Unmarshal(out, &st) != nil {
		f.Fatalf("backup = %d %s %v", status, out, err)
	}
	folder := st.URI[strings.LastIndexByte(st.URI, '/')+1:]
	for _, s := range []string{
		`{"certificates":[],"required":2}`, `{"value":"{}"}`, sas,
		`{"sasTokenParameters":` + sas + `,"folderToRestore":"` + folder + `"}`,
		`{"sasTokenParameters":` + sas + `,"folder":"` + folder + `"}`,
		`{"properties":{"roleDefinitionId":"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b","principalId":"` + principal.ObjectID + `","scope":"/"}}`,
		`{"properties":{"roleName":"r","type":"CustomRole","permissions":[{"dataActions":["Microsoft.KeyVault/managedHsm/keys/read/action"]}],"assignableScopes":["/"]}}`,
		`{"count":16}`, `[]`, `{"count":1e3}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, o := range ops {
			status, out, err := do(o, body)
			if err != nil {
				status = Resolve(err).Status
			}
			if status >= 500 {
				t.Fatalf("%s with body %q = %d %s (%v); want 2xx or 4xx", o.pattern, body, status, out, err)
			}
		}
	})
}
