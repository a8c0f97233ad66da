package apitest

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Crash tests kill a real server process with SIGKILL. The process is the
// test binary run again: its TestMain calls ServeChild when the variable
// the test chose names a store directory, and the test starts it with
// StartChild.

// ServeChild serves the services build makes on the store in dir, with
// the test keys, until the process is killed; it prints "LISTEN addr"
// first.
func ServeChild(dir string, build func(ctx context.Context, db *sql.DB) ([]api.Service, error)) error {
	ctx := context.Background()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		return err
	}
	services, err := build(ctx, db)
	if err != nil {
		return err
	}
	srv, err := api.New(api.Options{
		Credentials: api.StaticKeys{AccountID: AccountID, Keys: []api.AccessKey{{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}}},
		Services:    services,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return http.Serve(ln, srv)
}

// StartChild runs the test binary again as a ServeChild server on the
// store in dir (env names the variable its TestMain looks for) and
// returns the process, for the test to kill, and the server's URL.
func StartChild(t testing.TB, env, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("server did not start: %q %v", line, err)
	}
	return cmd, "http://" + addr
}

// PutUntilKilled runs writers goroutines that call put(w, n) for n = 0,
// 1, … until a call fails, kills the child cmd with SIGKILL after 1.5 s,
// and returns the calls acknowledged before the kill, as "w/n". It fails
// the test if none was.
func PutUntilKilled(t testing.TB, cmd *exec.Cmd, writers int, put func(w, n int) error) map[string]bool {
	t.Helper()
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if put(w, n) != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[fmt.Sprintf("%d/%d", w, n)] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no call was acknowledged before the kill")
	}
	return acked
}
