//! Use case (app), a decorator over the identity port: the bound on bus calls per mail
//! (issue 19 §3): identity look-ups, additional
//! requesters and uploads all draw on one budget, `max_calls_per_mail`. Look-ups are
//! cached within the mail, so one address written many times costs its calls once.
//! Past the budget the use case stops starting new work, delivers what it has and
//! says in the ticket what was left out: a permanent outcome, never a TEMPFAIL that
//! would repeat the same calls.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::Settings;
use super::identity::{Found, UserLookup};
use crate::ports::PortError;

/// How many bus calls of the variable kind one mail may still make.
#[derive(Debug)]
pub struct CallBudget {
    limit: usize,
    used: Cell<usize>,
}

impl CallBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Cell::new(0),
        }
    }

    /// Counts one call.
    pub fn spend(&self) {
        self.used.set(self.used.get().saturating_add(1));
    }

    /// Calls counted so far.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// No new piece of work may start.
    pub fn exhausted(&self) -> bool {
        self.used.get() >= self.limit
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

type Cached<T> = RefCell<HashMap<String, Result<T, PortError>>>;

/// The identity chain of a mail, counting its look-ups on a [`CallBudget`] and
/// answering a repeated address from memory (transient failures are not kept: a
/// later question may succeed). Since the chain can hold several directories
/// (issue 13), one look-up of a new address counts as one call.
pub struct BudgetedDirectory<'a, I> {
    inner: &'a I,
    budget: &'a CallBudget,
    lookups: Cached<Option<(String, Found)>>,
}

impl<'a, I> BudgetedDirectory<'a, I> {
    pub fn new(inner: &'a I, budget: &'a CallBudget) -> Self {
        Self {
            inner,
            budget,
            lookups: RefCell::default(),
        }
    }
}

impl<I: UserLookup> UserLookup for BudgetedDirectory<'_, I> {
    async fn lookup(
        &self,
        canonical: &str,
        settings: &Settings,
    ) -> Result<Option<(String, Found)>, PortError> {
        if let Some(r) = self.lookups.borrow().get(canonical) {
            return r.clone();
        }
        self.budget.spend();
        let r = self.inner.lookup(canonical, settings).await;
        if !matches!(r, Err(PortError::Transient(_))) {
            self.lookups
                .borrow_mut()
                .insert(canonical.to_string(), r.clone());
        }
        r
    }
}
