package node

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tandem-dev/tandem/protocol"
)

// errInvalid marks operator or peer input that is malformed; it maps to
// InvalidArgument.
var errInvalid = errors.New("invalid argument")

// errDiskLow is returned for new jobs while the data directory's free space
// is below Config.MinFreeBytes; it maps to ResourceExhausted. Free space
// (or lower the watermark) and retry.
var errDiskLow = errors.New("node: free disk space below the watermark")

// toStatus is the single place node errors become gRPC statuses (STYLE:
// trillian server/errors): invalid input → InvalidArgument, unknown object
// → NotFound, policy refusal → PermissionDenied, replay → AlreadyExists,
// expired → FailedPrecondition.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, errNotFound):
		code = codes.NotFound
	case errors.Is(err, errInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, errDiskLow):
		code = codes.ResourceExhausted
	case errors.Is(err, protocol.ErrBadSignature):
		code = codes.Unauthenticated
	case errors.Is(err, protocol.ErrReplay):
		code = codes.AlreadyExists
	case errors.Is(err, protocol.ErrProposalExpired), errors.Is(err, protocol.ErrAgreementExpired):
		code = codes.FailedPrecondition
	case errors.Is(err, protocol.ErrNoAgreement), errors.Is(err, protocol.ErrNotAllowed), errors.Is(err, ErrUnpinnedPeer):
		code = codes.PermissionDenied
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// retryable reports whether a job attempt failed for a transient reason
// (peer down or restarting) and should be retried.
func retryable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok {
			switch s.Code() {
			case codes.Unavailable, codes.Aborted:
				return true
			}
		}
	}
	return false
}
