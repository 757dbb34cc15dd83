//! The status codes of AutoNAT v2 responses (their own module: the error type names one).

/// The server's verdict on a request as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    /// Something failed on the server.
    InternalError,
    /// Not served: rate limit, resource limit or block list.
    RequestRejected,
    /// The server dials none of the addresses.
    DialRefused,
    /// The server dialed the address at `addr_idx` (successfully or not).
    Ok,
}

impl ResponseStatus {
    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            ResponseStatus::InternalError => 0,
            ResponseStatus::RequestRejected => 100,
            ResponseStatus::DialRefused => 101,
            ResponseStatus::Ok => 200,
        }
    }

    /// The status of a wire code, if it is one we know.
    pub fn from_code(code: i32) -> Option<ResponseStatus> {
        Some(match code {
            0 => ResponseStatus::InternalError,
            100 => ResponseStatus::RequestRejected,
            101 => ResponseStatus::DialRefused,
            200 => ResponseStatus::Ok,
            _ => return None,
        })
    }
}

/// The outcome of the dial back to the selected address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialStatus {
    /// No dial was made (the request as a whole failed).
    Unused,
    /// The server could not connect: the address is not reachable from there.
    DialError,
    /// The server connected but could not hand over the nonce.
    DialBackError,
    /// The server connected and handed over the nonce.
    Ok,
}

impl DialStatus {
    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            DialStatus::Unused => 0,
            DialStatus::DialError => 100,
            DialStatus::DialBackError => 101,
            DialStatus::Ok => 200,
        }
    }

    /// The status of a wire code, if it is one we know.
    pub fn from_code(code: i32) -> Option<DialStatus> {
        Some(match code {
            0 => DialStatus::Unused,
            100 => DialStatus::DialError,
            101 => DialStatus::DialBackError,
            200 => DialStatus::Ok,
            _ => return None,
        })
    }
}
