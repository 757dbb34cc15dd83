//! The status codes of AutoNAT v1 responses (their own module: the error type names one).

/// A v1 server's answer to a dial request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V1Status {
    /// At least one dial succeeded (`OK`).
    Ok,
    /// Every dial failed (`E_DIAL_ERROR`): the addresses are not reachable from the server.
    DialError,
    /// The server dials none of the addresses (`E_DIAL_REFUSED`): none on the IP it sees us
    /// on, a relayed connection, or a rate limit.
    DialRefused,
    /// The request was malformed (`E_BAD_REQUEST`), e.g. it named another peer.
    BadRequest,
    /// Something failed on the server (`E_INTERNAL_ERROR`).
    InternalError,
}

impl V1Status {
    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            V1Status::Ok => 0,
            V1Status::DialError => 100,
            V1Status::DialRefused => 101,
            V1Status::BadRequest => 200,
            V1Status::InternalError => 300,
        }
    }

    /// The status of a wire code, if it is one we know.
    pub fn from_code(code: i32) -> Option<V1Status> {
        Some(match code {
            0 => V1Status::Ok,
            100 => V1Status::DialError,
            101 => V1Status::DialRefused,
            200 => V1Status::BadRequest,
            300 => V1Status::InternalError,
            _ => return None,
        })
    }
}
