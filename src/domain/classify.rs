//! Whether to process a mail at all (BEHAVIOUR §2): sender lists, then detection of
//! machine-generated mail, each rule named for the log.

use super::mail::Mail;

/// Why a mail is considered machine-generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoClass {
    AutoReply,
    OutOfOffice,
    Bounce,
    ReadReceipt,
    BulkOrList,
    Loop,
}

/// The decision of §2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the filters. `forced` when `mails_sempre_ticket` matched.
    Process { forced: bool },
    /// The sender is in `mails_no_ticket`.
    SkipListed { item: String },
    /// Machine-generated: the class and the rule that fired.
    SkipAutomatic { class: AutoClass, rule: String },
}

/// Settings that drive the decision.
#[derive(Debug, Clone, Default)]
pub struct ClassifyOptions {
    pub mails_sempre_ticket: Vec<String>,
    pub mails_no_ticket: Vec<String>,
    /// Skip mailing-list posts (`Precedence: list`, `List-Id`). Default false.
    pub skip_list_mail: bool,
}

/// Decides whether to process the mail (placeholder until the core issue lands).
pub fn classify(mail: &Mail, opts: &ClassifyOptions) -> Decision {
    let _ = (mail, opts);
    Decision::Process { forced: false }
}
