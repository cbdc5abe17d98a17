//! What a failing AWS service answers, in that service's own protocol, so an SDK reads the
//! error code exactly as it reads AWS's (a DynamoDB-shaped JSON body is unreadable to the
//! RDS SDK, which would then see a 400 without a code: not retryable). The fault proxy picks
//! the answer by the request's signing name.
//!
//! Throttling, as each service documents it:
//! - AWS JSON 1.0/1.1 (DynamoDB, SSM, Step Functions, EventBridge, SQS, Logs): HTTP 400,
//!   `{"__type": "…ThrottlingException", "message": …}`.
//! - AWS Query (RDS, CloudFormation, SNS, STS, IAM): HTTP 400, `<ErrorResponse><Error>`
//!   with `<Code>Throttling</Code>`.
//! - EC2 Query: HTTP 503, `<Response><Errors><Error>` with `<Code>RequestLimitExceeded</Code>`.
//! - REST-JSON Lambda: HTTP 429, `x-amzn-ErrorType: TooManyRequestsException`.
//! - REST-XML S3: HTTP 503, `<Error><Code>SlowDown</Code>`.
//! - RPC v2 CBOR CloudWatch (`monitoring`): HTTP 400, a CBOR map with `__type` `Throttling`.
//!
//! A server error is each protocol's internal failure with HTTP 500.

/// One canned answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The whole HTTP/1.1 response (the connection closes after it).
    pub fn to_http(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nx-amzn-RequestId: fault-proxy\r\n",
            self.status, self.reason, self.content_type
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The DynamoDB throttling answer's body.
pub const DYNAMODB_THROTTLING_BODY: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
/// The DynamoDB server error answer's body.
pub const DYNAMODB_SERVER_ERROR_BODY: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#;

/// The wire protocol of a signing name.
fn protocol(service: Option<&str>) -> Protocol {
    match service {
        Some("rds" | "cloudformation" | "sns" | "sts" | "iam") => Protocol::Query,
        Some("ec2") => Protocol::Ec2,
        Some("lambda") => Protocol::RestJson,
        Some("s3") => Protocol::RestXml,
        Some("monitoring") => Protocol::Cbor,
        Some("dynamodb") => Protocol::DynamoDb,
        _ => Protocol::Json,
    }
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    DynamoDb,
    Json,
    Query,
    Ec2,
    RestJson,
    RestXml,
    Cbor,
}

/// The service's throttling answer.
pub fn throttling(service: Option<&str>) -> Answer {
    answer(protocol(service), true)
}

/// The service's internal server error answer.
pub fn server_error(service: Option<&str>) -> Answer {
    answer(protocol(service), false)
}

fn answer(protocol: Protocol, throttled: bool) -> Answer {
    let text = |status, reason, content_type, body: String| Answer {
        status,
        reason,
        content_type,
        headers: Vec::new(),
        body: body.into_bytes(),
    };
    let (code, message) = if throttled {
        ("Throttling", "Rate exceeded")
    } else {
        ("InternalFailure", "We encountered an internal error. Please try again.")
    };
    let failed = if throttled {
        (400, "Bad Request")
    } else {
        (500, "Internal Server Error")
    };
    match protocol {
        Protocol::DynamoDb => text(
            failed.0,
            failed.1,
            "application/x-amz-json-1.0",
            if throttled { DYNAMODB_THROTTLING_BODY } else { DYNAMODB_SERVER_ERROR_BODY }.to_owned(),
        ),
        Protocol::Json => text(
            failed.0,
            failed.1,
            "application/x-amz-json-1.1",
            format!(
                r#"{{"__type":"{}","message":"{message}"}}"#,
                if throttled { "ThrottlingException" } else { "InternalServerError" }
            ),
        ),
        Protocol::Query => text(
            failed.0,
            failed.1,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                if throttled { "Sender" } else { "Receiver" }
            ),
        ),
        Protocol::Ec2 => {
            let (status, reason, code) = if throttled {
                (503, "Service Unavailable", "RequestLimitExceeded")
            } else {
                (500, "Internal Server Error", "InternalError")
            };
            text(
                status,
                reason,
                "text/xml",
                format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"),
            )
        }
        Protocol::RestJson => {
            let (status, reason, kind) = if throttled {
                (429, "Too Many Requests", "TooManyRequestsException")
            } else {
                (500, "Internal Server Error", "ServiceException")
            };
            Answer {
                headers: vec![("x-amzn-ErrorType", kind.to_owned())],
                ..text(status, reason, "application/json", format!(r#"{{"message":"{message}"}}"#))
            }
        }
        Protocol::RestXml => {
            let (status, reason, code) = if throttled {
                (503, "Slow Down", "SlowDown")
            } else {
                (500, "Internal Server Error", "InternalError")
            };
            text(
                status,
                reason,
                "application/xml",
                format!("<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"),
            )
        }
        Protocol::Cbor => Answer {
            status: failed.0,
            reason: failed.1,
            content_type: "application/cbor",
            headers: vec![("smithy-protocol", "rpc-v2-cbor".to_owned())],
            body: cbor_map(&[
                ("__type", if throttled { "Throttling" } else { "InternalServiceError" }),
                ("message", message),
            ]),
        },
    }
}

/// A CBOR map of text keys to text values (RFC 8949: major types 5 and 3).
fn cbor_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    fn head(bytes: &mut Vec<u8>, major: u8, length: usize) {
        match length {
            0..=23 => bytes.push(major << 5 | length as u8),
            24..=255 => bytes.extend([major << 5 | 24, length as u8]),
            _ => {
                bytes.push(major << 5 | 25);
                bytes.extend((length as u16).to_be_bytes());
            }
        }
    }
    let mut bytes = Vec::new();
    head(&mut bytes, 5, pairs.len());
    for text in pairs.iter().flat_map(|(k, v)| [*k, *v]) {
        head(&mut bytes, 3, text.len());
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_names_its_throttling_code_where_its_sdk_reads_it() {
        assert_eq!(throttling(Some("dynamodb")).body, DYNAMODB_THROTTLING_BODY.as_bytes());
        let rds = String::from_utf8(throttling(Some("rds")).body).unwrap();
        assert!(rds.contains("<Code>Throttling</Code>"), "{rds}");
        let ec2 = throttling(Some("ec2"));
        assert_eq!(ec2.status, 503);
        assert!(String::from_utf8(ec2.body).unwrap().contains("RequestLimitExceeded"));
        let lambda = throttling(Some("lambda"));
        assert_eq!(
            (lambda.status, lambda.headers[0].1.as_str()),
            (429, "TooManyRequestsException")
        );
        assert_eq!(throttling(Some("s3")).status, 503);
        assert_eq!(server_error(Some("rds")).status, 500);
        let ssm = String::from_utf8(throttling(Some("ssm")).body).unwrap();
        assert!(ssm.contains(r#""__type":"ThrottlingException""#), "{ssm}");
    }

    #[test]
    fn the_cbor_error_is_a_map_of_type_and_message() {
        let body = throttling(Some("monitoring")).body;
        let mut expected = vec![0xA2, 0x66];
        expected.extend(b"__type");
        expected.push(0x6A);
        expected.extend(b"Throttling");
        expected.push(0x67);
        expected.extend(b"message");
        expected.push(0x6D);
        expected.extend(b"Rate exceeded");
        assert_eq!(body, expected);
        let long = cbor_map(&[("k", &"x".repeat(30))]);
        assert_eq!(&long[..4], &[0xA1, 0x61, b'k', 0x78]);
        assert_eq!(long[4], 30);
    }
}
