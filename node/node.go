package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/tandem-dev/tandem/audit"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Version is the node software version, reported to peers and operators.
var Version = "0.1.0"

// Node is one Tandem daemon. New loads and checks its identity and starts
// nothing; Run serves until its context ends; Close is idempotent. A Node
// is safe for concurrent use.
type Node struct {
	cfg     *Config
	id      *Identity
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex // guards cfg.Peers, conns
	conns   map[string]*grpc.ClientConn
	heads   map[string]uint64 // relationship log sizes last folded into the root log
	st      *state
	audit   *audit.Store
	jobs    *jobManager
	started time.Time

	peerLn, ctlLn, httpLn net.Listener
	peerSrv, ctlSrv       *grpc.Server
	httpSrv               *http.Server
	health                *health.Server
	ready                 chan struct{}

	// silentPeer makes this node's responder skip the receipt exchange, as
	// a peer that never countersigns would. Tests only.
	silentPeer atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// New prepares a node from a validated config. It reads the identity key
// but opens no listener and no database.
func New(cfg *Config, log *slog.Logger) (*Node, error) {
	if cfg == nil || cfg.home == "" {
		return nil, errors.New("node: config must come from LoadConfig")
	}
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	id, err := loadIdentity(cfg.path(cfg.KeyFile), cfg.path(cfg.CertFile))
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		id:      id,
		log:     log.With("node", cfg.Name),
		metrics: newMetrics(),
		conns:   map[string]*grpc.ClientConn{},
		heads:   map[string]uint64{},
		ready:   make(chan struct{}),
	}
	n.jobs = newJobManager(n)
	return n, nil
}

// Identity returns the node's public identity.
func (n *Node) Identity() *Identity { return n.id }

// Ready is closed once every listener is serving.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Addrs returns the bound peer, control and HTTP addresses (useful with
// ":0" listeners in tests). Valid after Ready.
func (n *Node) Addrs() (peer, control, httpAddr string) {
	peer, control = n.peerLn.Addr().String(), n.ctlLn.Addr().String()
	if n.httpLn != nil {
		httpAddr = n.httpLn.Addr().String()
	}
	return
}

// Run opens state, binds the listeners, resumes interrupted jobs and serves
// until ctx is cancelled, then shuts down gracefully.
func (n *Node) Run(ctx context.Context) error {
	n.started = time.Now()
	st, err := openState(n.cfg.path(n.cfg.DataDir))
	if err != nil {
		return err
	}
	n.st = st
	if n.audit, err = openAudit(n); err != nil {
		n.Close()
		return err
	}
	if size, err := n.audit.Size(rootLog); err == nil && size == 0 {
		n.record(ctx, event{Kind: "key_created", Detail: "ed25519 " + n.id.Fingerprint})
	}
	if err := n.record(ctx, event{Kind: "node_start", Detail: "version " + Version}); err != nil {
		n.Close()
		return err
	}
	n.recordConfigChange(ctx)
	if err := n.listen(); err != nil {
		n.Close()
		return err
	}
	n.serveAll()
	n.log.InfoContext(ctx, "node started", "peer_addr", n.peerLn.Addr().String(), "control_addr", n.ctlLn.Addr().String(), "fingerprint", n.id.Fingerprint, "version", Version)
	n.recordExpiries(ctx)
	n.jobs.resume(ctx)
	close(n.ready)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			n.recordLogHeads(ctx)
			n.recordExpiries(ctx)
		}
	}
	n.recordLogHeads(context.Background())
	n.log.Info("node stopping")
	return n.Close()
}

func (n *Node) listen() error {
	var err error
	if n.peerLn, err = net.Listen("tcp", n.cfg.PeerListen); err != nil {
		return fmt.Errorf("node: peer listener %s: %w", n.cfg.PeerListen, err)
	}
	if n.ctlLn, err = net.Listen("tcp", n.cfg.ControlListen); err != nil {
		return fmt.Errorf("node: control listener %s: %w", n.cfg.ControlListen, err)
	}
	if n.cfg.HTTPListen != "off" {
		if n.httpLn, err = net.Listen("tcp", n.cfg.HTTPListen); err != nil {
			return fmt.Errorf("node: http listener %s: %w", n.cfg.HTTPListen, err)
		}
	}
	return nil
}

func (n *Node) serveAll() {
	max := n.cfg.MaxMessageBytes
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus("tandem.v1.PeerService", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus("tandem.v1.ControlService", healthpb.HealthCheckResponse_SERVING)

	n.peerSrv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(serverTLS(n.id, n.pinnedByFingerprint))),
		grpc.ForceServerCodecV2(newFrameCodec()),
		grpc.MaxRecvMsgSize(max), grpc.MaxSendMsgSize(max),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	tandemv1.RegisterPeerServiceServer(n.peerSrv, &peerServer{n: n})
	healthpb.RegisterHealthServer(n.peerSrv, n.health)
	reflection.Register(n.peerSrv)

	n.ctlSrv = grpc.NewServer(
		grpc.MaxRecvMsgSize(max), grpc.MaxSendMsgSize(max),
		grpc.UnaryInterceptor(n.unaryAuth), grpc.StreamInterceptor(n.streamAuth),
	)
	tandemv1.RegisterControlServiceServer(n.ctlSrv, &controlServer{n: n})
	healthpb.RegisterHealthServer(n.ctlSrv, n.health)
	reflection.Register(n.ctlSrv)

	go n.peerSrv.Serve(n.peerLn)
	go n.ctlSrv.Serve(n.ctlLn)
	if n.httpLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		n.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go n.httpSrv.Serve(n.httpLn)
	}
}

// Close stops the servers (letting in-flight calls finish for up to 10 s),
// stops jobs without marking them failed (they resume on restart) and
// closes the state. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.health != nil {
			n.health.Shutdown()
		}
		n.jobs.stopAll()
		for _, srv := range []*grpc.Server{n.ctlSrv, n.peerSrv} {
			if srv == nil {
				continue
			}
			done := make(chan struct{})
			go func() { srv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				srv.Stop()
			}
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.httpSrv.Shutdown(ctx)
			cancel()
		}
		for _, ln := range []net.Listener{n.peerLn, n.ctlLn, n.httpLn} {
			if ln != nil {
				ln.Close()
			}
		}
		n.jobs.wait()
		if n.audit != nil {
			n.record(context.Background(), event{Kind: "node_stop"})
			n.audit.Close()
		}
		n.mu.Lock()
		for _, c := range n.conns {
			c.Close()
		}
		n.conns = map[string]*grpc.ClientConn{}
		n.mu.Unlock()
		if n.st != nil {
			n.closeErr = n.st.close()
		}
	})
	return n.closeErr
}

// pinnedByFingerprint maps a TLS key fingerprint to a pinned peer name.
func (n *Node) pinnedByFingerprint(fp string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.cfg.Peers {
		if fingerprintEqual(p.Fingerprint, fp) {
			return p.Name, true
		}
	}
	return "", false
}

func (n *Node) peerConfig(name string) (PeerConfig, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg.peer(name)
}

// dial returns a cached client connection to a pinned peer.
func (n *Node) dial(name string) (tandemv1.PeerServiceClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.cfg.peer(name)
	if !ok {
		return nil, fmt.Errorf("node: unknown peer %q (add it with `tandem peer add`)", name)
	}
	if c, ok := n.conns[name]; ok {
		return tandemv1.NewPeerServiceClient(c), nil
	}
	max := n.cfg.MaxMessageBytes
	c, err := grpc.NewClient(p.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(n.id, p.Fingerprint))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(max), grpc.MaxCallSendMsgSize(max), grpc.ForceCodecV2(newFrameCodec())),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("node: dial peer %s: %w", name, err)
	}
	n.conns[name] = c
	return tandemv1.NewPeerServiceClient(c), nil
}

// addPeer pins a peer and persists the config.
func (n *Node) addPeer(p PeerConfig) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("node: peer: %w", err)
	}
	if p.Name == n.cfg.Name {
		return fmt.Errorf("node: peer: %q is this node's own name", p.Name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	peers := append([]PeerConfig(nil), n.cfg.Peers...)
	replaced := false
	for i := range peers {
		if peers[i].Name == p.Name {
			peers[i], replaced = p, true
		}
	}
	if !replaced {
		peers = append(peers, p)
	}
	old := n.cfg.Peers
	n.cfg.Peers = peers
	if err := n.cfg.Save(); err != nil {
		n.cfg.Peers = old
		return err
	}
	if c, ok := n.conns[p.Name]; ok {
		c.Close()
		delete(n.conns, p.Name)
	}
	return nil
}

// recordConfigChange records a config_change entry when the configuration
// the node starts with differs from the one it last started with (edits
// made while it was down). Changes made through the API (peer pins) are
// recorded where they happen.
func (n *Node) recordConfigChange(ctx context.Context) {
	b, err := n.cfg.Render()
	if err != nil {
		return
	}
	sum := sha256.Sum256(b)
	now := hex.EncodeToString(sum[:])
	var last string
	if err := n.st.getJSON("config/digest", &last); err == nil && last != now {
		n.record(ctx, event{Kind: "config_change", Detail: "config sha256 " + last + " -> " + now})
	}
	n.st.putJSON("config/digest", now)
}
