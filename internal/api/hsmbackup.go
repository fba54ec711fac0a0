package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// BackupStore keeps managed HSM full backups (the server: files under its data directory).
// Container and folder are validated names. Read returns ErrBackupNotFound for a missing one.
type BackupStore interface {
	Write(ctx context.Context, tenantID, container, folder string, blob []byte) error
	Read(ctx context.Context, tenantID, container, folder string) ([]byte, error)
}

// ErrBackupNotFound is returned by a BackupStore for a folder it does not hold.
var ErrBackupNotFound = errors.New("no such backup folder")

// HSMBackup serves a managed HSM pool's full backup, full restore and selective key restore
// (administration.json). Coffer has no Azure Blob storage: storageResourceUri names a
// container only by its last path segment, the SAS token is ignored, and the BackupStore
// keeps the backup. Every operation completes before the 202 answer; failures are answered
// directly (4xx) instead of as a failed job. Job statuses are kept in memory.
type HSMBackup struct {
	Keys  func() (*keys.Service, error)
	SD    func() (*secdomain.Service, error)
	Store BackupStore
	mu    sync.Mutex
	jobs  map[string]any // scope/jobId → operation status; bounded by maxJobs
	order []string
}

const (
	fullBackupFormat = "coffer-mhsm-backup/1"
	maxJobs          = 1024
)

// fullBackup is the plaintext of a full backup, sealed by secdomain.SealFullBackup.
type fullBackup struct {
	Format  string             `json:"format"`
	Pool    string             `json:"pool"`
	Created int64              `json:"created"`
	Keys    []keys.NamedBackup `json:"keys"`
}

type sasToken struct {
	StorageResourceURI string `json:"storageResourceUri"`
	Token              string `json:"token,omitempty"`
	UseManagedIdentity bool   `json:"useManagedIdentity,omitempty"`
}

var (
	containerRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$`)
	folderRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,99}$`)
	jobIDRE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// Routes are the full backup and restore endpoints of managed HSM pools.
func (h *HSMBackup) Routes() []Route {
	pool := []tenancy.Kind{tenancy.KindManagedHSM}
	return []Route{
		{Pattern: "POST /backup", Kinds: pool, Operation: "FullBackup", Action: hsmAction(authz.HSMBackupStart), MaxBody: 16 << 10, Handle: h.backup},
		{Pattern: "GET /backup/{job}/pending", Kinds: pool, Operation: "FullBackupStatus", Action: hsmAction(authz.HSMBackupStatus), Handle: h.status("backup")},
		{Pattern: "PUT /restore", Kinds: pool, Operation: "FullRestore", Action: hsmAction(authz.HSMRestoreStart), MaxBody: 16 << 10, Handle: h.restore},
		{Pattern: "GET /restore/{job}/pending", Kinds: pool, Operation: "FullRestoreStatus", Action: hsmAction(authz.HSMRestoreStatus), Handle: h.status("restore")},
		{Pattern: "PUT /keys/{name}/restore", Kinds: pool, Operation: "SelectiveKeyRestore", Action: hsmAction(authz.HSMRestoreStart), MaxBody: 16 << 10, Handle: h.restore},
	}
}

// container validates a SAS token parameter and returns its container name.
func (t *sasToken) container() (string, error) {
	u, err := url.Parse(t.StorageResourceURI)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return "", Errorf(http.StatusBadRequest, "BadParameter", "storageResourceUri must be an https URL of a blob container, e.g. https://account.blob.core.windows.net/backups")
	}
	c := strings.Trim(u.Path, "/")
	if !containerRE.MatchString(c) {
		return "", Errorf(http.StatusBadRequest, "BadParameter", "the container named by storageResourceUri must be 3-63 lower-case letters, digits and '-'")
	}
	return c, nil
}

func newJobID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// remember keeps a job's final status for its pending endpoint.
func (h *HSMBackup) remember(c *Call, kind, job string, status any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.jobs == nil {
		h.jobs = map[string]any{}
	}
	k := StoreScope(c.Store) + "/" + kind + "/" + job
	h.jobs[k] = status
	h.order = append(h.order, k)
	if len(h.order) > maxJobs {
		delete(h.jobs, h.order[0])
		h.order = h.order[1:]
	}
}

func (h *HSMBackup) status(kind string) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		job := r.PathValue("job")
		if !jobIDRE.MatchString(job) {
			return ErrNotFound
		}
		h.mu.Lock()
		st, ok := h.jobs[StoreScope(c.Store)+"/"+kind+"/"+job]
		h.mu.Unlock()
		if !ok {
			return Errorf(http.StatusNotFound, "NotFound", "no "+kind+" job with this id on this pool (job statuses are kept in memory until the server restarts)")
		}
		WriteJSON(w, http.StatusOK, st)
		return nil
	}
}

// operation is what a backup or restore starts with.
type operation struct {
	keys      *keys.Service
	sd        *secdomain.Service
	container string
	job       string
	start     time.Time
}

// begin validates the SAS parameters and gets the services and a job id.
func (h *HSMBackup) begin(sas *sasToken) (*operation, error) {
	container, err := sas.container()
	if err != nil {
		return nil, err
	}
	op := &operation{container: container, start: time.Now().UTC()}
	if op.keys, err = h.Keys(); err != nil {
		return nil, err
	}
	if op.sd, err = h.SD(); err != nil {
		return nil, err
	}
	if op.job, err = newJobID(); err != nil {
		return nil, err
	}
	return op, nil
}

func (h *HSMBackup) backup(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req sasToken
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	op, err := h.begin(&req)
	if err != nil {
		return err
	}
	ks, sd, container, job, start := op.keys, op.sd, op.container, op.job, op.start
	all, err := ks.BackupAll(r.Context(), c.Store)
	if err != nil {
		return mapKeysError(err)
	}
	plain, err := json.Marshal(fullBackup{Format: fullBackupFormat, Pool: c.Store.Name, Created: start.Unix(), Keys: all})
	if err != nil {
		return err
	}
	blob, err := sd.SealFullBackup(r.Context(), c.Store, plain)
	clear(plain)
	if err != nil {
		return SecurityDomainError(err)
	}
	folder := "mhsm-" + c.Store.Name + "-" + start.Format("20060102T150405Z") + "-" + job[:6]
	if err := h.Store.Write(r.Context(), c.Store.TenantID, container, folder, blob); err != nil {
		return err
	}
	st := map[string]any{"status": "Succeeded", "statusDetails": "the full backup holds " + strconv.Itoa(len(all)) + " keys",
		"jobId": job, "startTime": start.Unix(), "endTime": time.Now().Unix(),
		"azureStorageBlobContainerUri": strings.TrimRight(req.StorageResourceURI, "/") + "/" + folder}
	h.remember(c, "backup", job, st)
	accepted(w, r, c, "/backup/"+job+"/pending", st)
	return nil
}

type restoreRequest struct {
	SAS             *sasToken `json:"sasTokenParameters"`
	FolderToRestore string    `json:"folderToRestore"`
	Folder          string    `json:"folder"` // selective key restore
}

// restore answers PUT /restore (every key of the backup) and PUT /keys/{name}/restore (one).
// The target pool must hold the backup's security domain; restore is all or nothing.
func (h *HSMBackup) restore(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req restoreRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	selective := r.PathValue("name")
	folder := req.FolderToRestore
	if selective != "" {
		folder = req.Folder
	}
	if req.SAS == nil || !folderRE.MatchString(folder) {
		return Errorf(http.StatusBadRequest, "BadParameter", "sasTokenParameters and the folder of a full backup (the last segment of azureStorageBlobContainerUri) are required")
	}
	op, err := h.begin(req.SAS)
	if err != nil {
		return err
	}
	ks, sd, container, job, start := op.keys, op.sd, op.container, op.job, op.start
	blob, err := h.Store.Read(r.Context(), c.Store.TenantID, container, folder)
	if errors.Is(err, ErrBackupNotFound) {
		return Errorf(http.StatusBadRequest, "BadParameter", "the container holds no backup folder with this name")
	}
	if err != nil {
		return err
	}
	plain, err := sd.OpenFullBackup(r.Context(), c.Store, blob)
	if errors.Is(err, secdomain.ErrCorruptBackup) {
		return Errorf(http.StatusBadRequest, "BadParameter", err.Error())
	}
	if err != nil {
		return SecurityDomainError(err)
	}
	var fb fullBackup
	err = json.Unmarshal(plain, &fb)
	clear(plain)
	if err != nil || fb.Format != fullBackupFormat {
		return Errorf(http.StatusBadRequest, "BadParameter", secdomain.ErrCorruptBackup.Error())
	}
	set := fb.Keys
	if selective != "" {
		set = nil
		for _, k := range fb.Keys {
			if strings.EqualFold(k.Name, selective) {
				set = append(set, k)
			}
		}
		if len(set) != 1 {
			return Errorf(http.StatusBadRequest, "BadParameter", "the backup holds no key with this name")
		}
	}
	restored, err := ks.RestoreAll(r.Context(), c.Store, c.StoreURL, set)
	if err != nil {
		return mapKeysError(err)
	}
	st := map[string]any{"status": "Succeeded", "statusDetails": "restored " + strconv.Itoa(len(restored)) + " keys",
		"jobId": job, "startTime": start.Unix(), "endTime": time.Now().Unix()}
	h.remember(c, "restore", job, st)
	accepted(w, r, c, "/restore/"+job+"/pending", st)
	return nil
}
