package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// lifeSignFiles are the names of the files lifeSigns looks for, besides rotated audit logs.
var lifeSignFiles = []string{AuditFile, devShareFile}

// lifeSigns returns the files in the data directory that only a server whose store was
// initialized leaves behind: the audit log (with its rotated files), opened at the first
// unseal, and dev mode's unseal share.
func lifeSigns(dataDir string) []string {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return nil
	}
	var signs []string
	for _, e := range entries {
		if n := e.Name(); slices.Contains(lifeSignFiles, n) || strings.HasPrefix(n, AuditFile+".") {
			signs = append(signs, n)
		}
	}
	return signs
}

// checkStoreLost refuses to start when the database file is missing (before it is opened,
// so that Open does not create it) or holds no initialized store, while the data directory
// shows that this server had one: the file was deleted, moved or replaced. Starting anyway
// would serve an empty store, in dev mode even initialize a new one, and the history written
// before would be gone without a word (SECURITY-NOTES D4).
func (s *Server) checkStoreLost(ctx context.Context, dbPath string, opened bool) error {
	signs := lifeSigns(s.cfg.DataDir)
	if len(signs) == 0 {
		return nil
	}
	what := "is missing"
	if !opened {
		if _, err := os.Stat(dbPath); !errors.Is(err, fs.ErrNotExist) {
			return nil // there is a file: Open checks it, then the second call
		}
	} else {
		st, err := s.manager.Status(ctx)
		if err != nil || st.Initialized {
			return nil // a failing Status is Start's to report
		}
		what = "holds no initialized store"
	}
	return fmt.Errorf("storage: %s %s, but the data directory %s holds %s, left by a server whose store was initialized: the database file was deleted, moved or replaced. Coffer does not start on an empty store, which would lose everything written before without a word. Put the database file back or restore it from a backup; to start afresh on purpose, use a new data directory (or move %s aside)",
		dbPath, what, s.cfg.DataDir, strings.Join(signs, ", "), strings.Join(signs, ", "))
}
