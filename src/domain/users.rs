//! Users: the user operations of [`Keyward`], and the audit trail.

use std::collections::HashMap;
use std::sync::Arc;

use super::access::{self, SelfChange};
use super::caller::Caller;
use super::keyward::Keyward;
use super::limits::check_credits_change;
use super::paging;
use super::{
    AuditLine, AuditRecord, Email, Error, KeyId, Password, Role, Secret, Timestamp, UserId, UserRecord, Username,
};
use crate::store::{CreditsChange, UserChanges};

pub struct NewUserRequest {
    pub username: Username,
    pub password: Password,
    pub email: Option<Email>,
    pub role: Role,
}

/// A partial update; `None` leaves a field as it is. `email: Some(None)` clears it.
#[derive(Default)]
pub struct UserUpdate {
    pub password: Option<Password>,
    pub email: Option<Option<Email>>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// Rate limits shared by all the user's keys (empty: none).
    pub ratelimits: Option<crate::model::RateLimits>,
    /// Credits shared by all the user's keys: set, clear or add.
    pub credits: Option<super::CreditsChange>,
}

pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub total: u64,
    pub next_cursor: Option<UserId>,
}

impl Keyward {
    /// Whether any user exists (the bootstrap admin is made only into an empty database).
    pub async fn has_users(&self) -> Result<bool, Error> {
        let n = self
            .store()
            .count_users()
            .await
            .map_err(|e| e.into_domain("counting users failed"))?;
        Ok(n > 0)
    }

    /// Makes the first admin, `admin`; only into a database without users.
    pub async fn bootstrap_admin(&self, password: Password) -> Result<UserRecord, Error> {
        let now = self.now();
        let request = NewUserRequest {
            username: Username::parse("admin")?,
            password,
            email: None,
            role: Role::Admin,
        };
        self.insert_user(&self.operator(), request, UserId::generate()?, now)
            .await
    }

    /// Admin: creates a user.
    pub async fn create_user(&self, caller: &Caller, request: NewUserRequest) -> Result<UserRecord, Error> {
        let now = self.now();
        access::require_admin(caller)?;
        self.insert_user(caller, request, UserId::generate()?, now).await
    }

    /// Admin: makes a user with an id chosen by the caller (fixtures derive theirs).
    pub(crate) async fn insert_user_with_id(
        &self,
        caller: &Caller,
        request: NewUserRequest,
        id: UserId,
    ) -> Result<UserRecord, Error> {
        let now = self.now();
        access::require_admin(caller)?;
        self.insert_user(caller, request, id, now).await
    }

    async fn insert_user(
        &self,
        caller: &Caller,
        request: NewUserRequest,
        id: UserId,
        now: Timestamp,
    ) -> Result<UserRecord, Error> {
        let password_hash: Arc<str> = self.passwords().hash(&request.password).await?.into();
        let record = UserRecord::new(
            id,
            request.username.as_str().to_owned(),
            request.email.map(|e| e.as_str().to_owned()),
            request.role,
            password_hash,
            now,
        );
        self.store_new_user(caller, record, now).await
    }

    /// Admin: makes a user who brings a password hash from another system (see
    /// `passwords::IMPORTED_SCRYPT`): verified as it is at their next sign-in, then replaced
    /// by an argon2id hash.
    pub(crate) async fn import_user(
        &self,
        caller: &Caller,
        username: Username,
        email: Option<Email>,
        password_hash: String,
    ) -> Result<UserRecord, Error> {
        let now = self.now();
        access::require_admin(caller)?;
        let record = UserRecord::new(
            UserId::generate()?,
            username.as_str().to_owned(),
            email.map(|e| e.as_str().to_owned()),
            Role::User,
            password_hash.into(),
            now,
        );
        self.store_new_user(caller, record, now).await
    }

    async fn store_new_user(&self, caller: &Caller, record: UserRecord, now: Timestamp) -> Result<UserRecord, Error> {
        let view = self.view().clone();
        let stored = record.clone();
        let mut detail = vec![format!("role={}", record.role.as_str())];
        detail.extend(record.email.as_ref().map(|e| format!("email={e}")));
        self.store()
            .insert_user(
                record.clone(),
                caller
                    .audit("user.create", Some(("user", record.id.to_string())), now)
                    .with_detail(detail.join(", ")),
                move || view.put_user(stored),
            )
            .await
            .map_err(|e| {
                e.conflict_as(
                    "a user with that username or email already exists",
                    "storing the user failed",
                )
            })?;
        Ok(record)
    }

    /// Admin: a page of live users, oldest first.
    pub async fn list_users(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage, Error> {
        access::require_admin(caller)?;
        let limit = paging::page_limit(limit)?;
        let after = paging::parse_cursor(cursor, UserId::parse)?;
        let page = self
            .store()
            .list_users(after, limit)
            .await
            .map_err(|e| e.into_domain("listing users failed"))?
            .ok_or_else(|| Error::invalid("cursor", "not a cursor from a previous page"))?;
        let next_cursor = if page.more {
            page.items.last().map(|u| u.id)
        } else {
            None
        };
        let mut users = page.items;
        self.overlay_user_credits(&mut users);
        Ok(UserPage {
            users,
            total: page.total,
            next_cursor,
        })
    }

    /// Shows users' credits as of now: a refill due, or what this node knows of the balance
    /// since it last reserved from it (the stored record does not follow reservations).
    fn overlay_user_credits(&self, users: &mut [UserRecord]) {
        let now = self.now();
        for user in users {
            let Some(credits) = user.credits.as_mut() else { continue };
            if credits.refill_due(&mut user.credits_period, now) {
                continue;
            }
            if let Some(known) = self.view().user_limits(user.id).and_then(|l| l.credits_known(now)) {
                credits.remaining = known;
            }
        }
    }

    /// Admin: one live user.
    pub fn get_user(&self, caller: &Caller, id: UserId) -> Result<UserRecord, Error> {
        access::require_admin(caller)?;
        match self.view().user(id) {
            Some(u) if !u.deleted => {
                let mut user = (*u).clone();
                self.overlay_user_credits(std::slice::from_mut(&mut user));
                Ok(user)
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Admin: changes a user's password, email, role or disabled flag. A new password or
    /// disabling ends the user's access tokens at once; disabling stops their keys too.
    /// An admin cannot disable or demote themself (so one admin always remains).
    pub async fn update_user(&self, caller: &Caller, id: UserId, update: UserUpdate) -> Result<UserRecord, Error> {
        let now = self.now();
        access::require_admin(caller)?;
        if update.password.is_some() {
            access::may_set_password(caller, id)?;
        }
        if update.disabled == Some(true) || update.role == Some(Role::User) {
            access::may_change_self(caller, id, SelfChange::DisableOrDemote)?;
        }
        if let Some(user) = self.view().user(id) {
            check_credits_change(user.credits.as_ref(), update.credits.as_ref())?;
        }
        let password_hash = match &update.password {
            Some(p) => Some(Arc::from(self.passwords().hash(p).await?)),
            None => None,
        };
        let mut fields = Vec::new();
        if update.password.is_some() {
            fields.push("password".to_owned());
        }
        if let Some(email) = &update.email {
            fields.push(format!("email={}", email.as_ref().map_or("null", |e| e.as_str())));
        }
        if let Some(role) = update.role {
            fields.push(format!("role={}", role.as_str()));
        }
        if let Some(disabled) = update.disabled {
            fields.push(format!("disabled={disabled}"));
        }
        if let Some(ratelimits) = &update.ratelimits
            && ratelimits.is_empty()
        {
            fields.push("ratelimits=none".to_owned());
        }
        fields.extend(super::keys::limits_detail(
            update.ratelimits.as_ref().unwrap_or(&crate::model::RateLimits::none()),
            update.credits.as_ref(),
        ));
        let audit = caller
            .audit("user.update", Some(("user", id.to_string())), now)
            .with_detail(fields.join(", "));
        let changes = UserChanges {
            bump_epoch: password_hash.is_some() || update.disabled == Some(true),
            password_hash,
            email: update.email.map(|e| e.map(|e| e.as_str().to_owned())),
            role: update.role,
            disabled: update.disabled,
            ratelimits: update.ratelimits,
            credits: update.credits,
        };
        self.apply_user_changes(id, changes, now, audit).await
    }

    async fn apply_user_changes(
        &self,
        id: UserId,
        changes: UserChanges,
        now: Timestamp,
        audit: AuditRecord,
    ) -> Result<UserRecord, Error> {
        let view = self.view().clone();
        // Credits added: what this node knew of the balance is forgotten (its block stays);
        // set anew, the credits' generation moves on and the block is void.
        let added_credits = matches!(changes.credits, Some(CreditsChange::Add(_)));
        self.store()
            .update_user(id, changes, now, audit, move |updated| {
                if let Some(user) = updated {
                    view.put_user(user.clone());
                    if added_credits {
                        view.forget_user_balance(user.id);
                    }
                }
            })
            .await
            .map_err(|e| e.conflict_as("a user with that email already exists", "updating the user failed"))?
            .ok_or(Error::NotFound)
    }

    /// Admin: soft-deletes a user and revokes all their keys in the same transaction. The
    /// username becomes free; the id stays in the records. An admin cannot delete themself.
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> Result<(), Error> {
        let now = self.now();
        access::require_admin(caller)?;
        access::may_change_self(caller, id, SelfChange::Delete)?;
        let view = self.view().clone();
        let deleted = self
            .store()
            .delete_user(
                id,
                now,
                caller
                    .audit("user.delete", Some(("user", id.to_string())), now)
                    .with_detail("deleted, keys revoked"),
                move |revoked| {
                    if let Some(lookups) = revoked {
                        view.remove_keys(lookups);
                        if let Some(user) = view.user(id) {
                            let mut gone = (*user).clone();
                            gone.deleted = true;
                            gone.disabled = true;
                            gone.token_epoch += 1;
                            view.put_user(gone);
                        }
                    }
                },
            )
            .await
            .map_err(|e| e.into_domain("deleting the user failed"))?;
        deleted.map(|_| ()).ok_or(Error::NotFound)
    }

    /// A user changes their own password. Needs the current one, and never works with a key.
    /// Ends the user's existing access tokens.
    pub async fn change_own_password(&self, caller: &Caller, current: &Secret, new: Password) -> Result<(), Error> {
        let now = self.now();
        access::may_set_password(caller, caller.user.id)?;
        // The same check as a sign-in: a stolen session or token cannot guess the current
        // password any faster than a login could (throttled, audited as a failed login).
        match self
            .check_password(&caller.user.username, current, caller.source, now)
            .await
        {
            Ok(_) => {}
            Err(Error::WrongPassword) => return Err(Error::invalid("current_password", "does not match")),
            Err(e) => return Err(e),
        }
        let password_hash = Some(Arc::from(self.passwords().hash(&new).await?));
        let changes = UserChanges {
            password_hash,
            bump_epoch: true,
            ..UserChanges::default()
        };
        let audit = caller
            .audit("user.password", Some(("user", caller.user.id.to_string())), now)
            .with_detail("password");
        self.apply_user_changes(caller.user.id, changes, now, audit)
            .await
            .map(|_| ())
    }
}

/// A page of the audit trail, newest first.
pub struct AuditPage {
    pub entries: Vec<AuditLine>,
    pub total: u64,
    pub next_cursor: Option<String>,
}

impl Keyward {
    /// Admin: the audit trail, newest first.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<AuditPage, Error> {
        access::require_admin(caller)?;
        let limit = paging::page_limit(limit)?;
        let before = paging::parse_cursor(cursor, |c| c.parse::<i64>().ok().filter(|n| *n > 0))?;
        let page = self
            .store()
            .list_audit(before, limit)
            .await
            .map_err(|e| e.into_domain("reading the audit trail failed"))?;
        let next_cursor = if page.more {
            page.items.last().map(|line| line.seq.to_string())
        } else {
            None
        };
        Ok(AuditPage {
            entries: page.items,
            total: page.total,
            next_cursor,
        })
    }

    /// Admin: the keys that audit lines name, revoked ones too, by id: whose each is, its
    /// name now, whether it is revoked (for links, and names older lines did not record).
    pub async fn audit_key_targets(
        &self,
        caller: &Caller,
        ids: Vec<KeyId>,
    ) -> Result<HashMap<KeyId, KeyTarget>, Error> {
        access::require_admin(caller)?;
        let found = self
            .store()
            .describe_keys(ids)
            .await
            .map_err(|e| e.into_domain("reading keys failed"))?;
        Ok(found
            .into_iter()
            .map(|k| {
                let target = KeyTarget {
                    owner: k.owner,
                    name: k.name,
                    revoked: k.revoked,
                };
                (k.id, target)
            })
            .collect())
    }

    /// Whether `username` has ever signed in to the web console (the sign-in page tells a
    /// first-time admin where the generated password is until then).
    pub async fn has_signed_in_to_the_console(&self, username: &str) -> Result<bool, Error> {
        let Some(user) = self.view().user_by_login(username) else {
            return Ok(false);
        };
        self.store()
            .has_started_a_session(user.id)
            .await
            .map_err(|e| e.into_domain("reading the audit trail failed"))
    }
}

/// A key an audit line names, as it is now.
pub struct KeyTarget {
    pub owner: UserId,
    pub name: Option<String>,
    pub revoked: bool,
}
