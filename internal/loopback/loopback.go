// Package loopback hands out loopback TCP addresses for local testnets and
// tests that must write a node's listen address into its config before the
// node starts.
//
// The usual trick, listening on 127.0.0.1:0 and closing, returns a port from
// the kernel's ephemeral range, which the kernel hands straight back to the
// next outgoing connection or ":0" listener of any process on the machine.
// With several test binaries running at once that race is lost often enough
// to fail CI ("bind: address already in use"). Ports drawn at random from
// below the ephemeral range are never handed out by the kernel on its own, so
// only another caller of this package can take one, and with some fifteen
// thousand ports to draw from that is rare. Within one process a port is
// never handed out twice: callers that draw one address at a time (a node
// per call) would otherwise collide once in a few hundred testnets, since a
// port is only held while Addrs runs.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range drawn from: above the registered ports
// that system services commonly use.
const lowest = 15000

// given holds the ports this process has handed out.
var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addrs returns n distinct 127.0.0.1 addresses whose ports were free when
// checked and were not returned before in this process.
func Addrs(n int) ([]string, error) {
	hi := ephemeralLow()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	out := make([]string, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("loopback: no free port found in %d..%d after %d tries", lowest, hi-1, tries)
		}
		port := lowest + rand.IntN(hi-lowest)
		mu.Lock()
		taken := given[port]
		mu.Unlock()
		if taken {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		mu.Lock()
		given[port] = true
		mu.Unlock()
		held = append(held, l) // held until return, so the n are distinct
		out = append(out, addr)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768 when
// the range cannot be read (Linux's default; other systems start higher).
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallback
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= lowest+1000 {
		return fallback
	}
	return lo
}
