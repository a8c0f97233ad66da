package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an AWS API error: the HTTP status, the error code the AWS CLI
// and SDKs switch on, and a message for people.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a client error (HTTP 400) with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error; anything else becomes an
// InternalError (HTTP 500) whose message does not leak details.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred"}
}

var errUnknownKey = errors.New("unknown access key")

// errRequestCanceled answers a request its client abandoned before it was
// authenticated (499, nginx's "client closed request": no one reads it).
var errRequestCanceled = &Error{Status: 499, Code: "RequestCanceled", Message: "the client closed the request before it was authenticated"}

// AccessDenied is the refusal of action on resources, in the code and
// wording of service's API.
func AccessDenied(service string, p Principal, action string, resources []string) *Error {
	res := strings.Join(resources, ", ")
	switch service {
	case "ec2":
		return &Error{Status: http.StatusForbidden, Code: "UnauthorizedOperation",
			Message: fmt.Sprintf("You are not authorized to perform this operation. User: %s is not authorized to perform: %s on resource: %s", p.ARN, action, res)}
	case "logs", "firehose": // the JSON 1.1 APIs' common error
		return &Error{Status: http.StatusBadRequest, Code: "AccessDeniedException",
			Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", p.ARN, action, res)}
	default:
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", p.ARN, action, res)}
	}
}
