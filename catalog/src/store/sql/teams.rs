//! Teams and memberships on both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, Sqlite};
use tessera_contracts::api::{Team, TeamCreate, TeamUpdate};

use super::{Entry, PgStore, SqliteStore, Tx, Written, check_revision, constraint};
use crate::store::{PageRequest, Result, StoreError, TeamStore};

#[derive(FromRow)]
struct TeamRow {
    name: String,
    title: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl TeamRow {
    fn into_api(self, members: Vec<String>) -> Team {
        Team {
            name: self.name,
            title: self.title,
            description: self.description,
            members,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        }
    }
}

macro_rules! team_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The team with its members, which must exist.
            async fn team(tx: &mut Tx<$db>, name: &str) -> Result<Team> {
                let row = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {name:?}")))?;
                let members: Vec<String> =
                    sqlx::query_scalar("SELECT principal FROM team_members WHERE team = $1 ORDER BY principal")
                        .bind(name)
                        .fetch_all(&mut **tx)
                        .await?;
                Ok(row.into_api(members))
            }

            /// A membership changed: the team's revision moves, and it is read back.
            async fn touch_team(tx: &mut Tx<$db>, team: &str) -> Result<Team> {
                sqlx::query("UPDATE teams SET updated_at = $2, revision = revision + 1 WHERE name = $1")
                    .bind(team)
                    .bind(Utc::now())
                    .execute(&mut **tx)
                    .await?;
                Self::team(tx, team).await
            }

            /// Refuses a team that does not exist, as an invalid reference.
            pub(super) async fn require_team(tx: &mut Tx<$db>, team: &str) -> Result<()> {
                let found: Option<String> = sqlx::query_scalar("SELECT name FROM teams WHERE name = $1")
                    .bind(team)
                    .fetch_optional(&mut **tx)
                    .await?;
                found.map(|_| ()).ok_or_else(|| StoreError::Invalid(format!("team {team:?} does not exist")))
            }

            async fn members_of(&self, teams: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
                let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let (Some(first), Some(last)) = (teams.first(), teams.last()) else {
                    return Ok(out);
                };
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT team, principal FROM team_members WHERE team >= $1 AND team <= $2 ORDER BY team, principal",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&self.pool)
                .await?;
                for (team, principal) in rows {
                    out.entry(team).or_default().push(principal);
                }
                Ok(out)
            }
        }

        #[async_trait]
        impl TeamStore for $store {
            async fn create_team(&self, actor: &str, new: &TeamCreate) -> Result<Team> {
                self.write(actor, move |mut tx| async move {
                    sqlx::query(
                        "INSERT INTO teams (name, title, description, created_at, updated_at, revision) \
                         VALUES ($1, $2, $3, $4, $4, 1)",
                    )
                    .bind(&new.name)
                    .bind(new.title.as_deref().unwrap_or(&new.name))
                    .bind(new.description.as_deref().unwrap_or(""))
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("team {:?}", new.name)))?;
                    for member in &new.members {
                        if Self::principal_in(&mut *tx, member).await?.is_none() {
                            return Err(StoreError::Invalid(format!("member {member:?}: no such principal")));
                        }
                        sqlx::query("INSERT INTO team_members (team, principal) VALUES ($1, $2)")
                            .bind(&new.name)
                            .bind(member)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| constraint(e, &format!("member {member:?}")))?;
                    }
                    let created = Self::team(&mut tx, &new.name).await?;
                    let entry = Entry::new("create", "team", format!("/teams/{}", new.name)).after(&created);
                    Ok((tx, entry.of(created)))
                })
                .await
            }

            async fn get_team(&self, name: &str) -> Result<Option<Team>> {
                let Some(row) = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut members = self.members_of(&[name.to_string()]).await?;
                Ok(Some(row.into_api(members.remove(name).unwrap_or_default())))
            }

            async fn list_teams(&self, page: &PageRequest) -> Result<Vec<Team>> {
                let rows = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(page.limit + 1)
                    .fetch_all(&self.pool)
                    .await?;
                let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
                let mut members = self.members_of(&names).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        let m = members.remove(&r.name).unwrap_or_default();
                        r.into_api(m)
                    })
                    .collect())
            }

            async fn update_team(&self, actor: &str, name: &str, if_match: Option<i64>, patch: &TeamUpdate) -> Result<Team> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::team(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    sqlx::query(
                        "UPDATE teams SET title = $2, description = $3, updated_at = $4, revision = revision + 1 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(patch.title.as_ref().unwrap_or(&before.title))
                    .bind(patch.description.as_ref().unwrap_or(&before.description))
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?;
                    let after = Self::team(&mut tx, name).await?;
                    let entry = Entry::new("update", "team", format!("/teams/{name}")).before(&before).after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn delete_team(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::team(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    sqlx::query("DELETE FROM teams WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| match constraint(e, &format!("team {name:?}")) {
                            StoreError::Conflict(_) => {
                                StoreError::Conflict(format!("team {name:?} still owns domains or products"))
                            }
                            other => other,
                        })?;
                    let entry = Entry::new("delete", "team", format!("/teams/{name}")).before(&before);
                    Ok((tx, entry.of(())))
                })
                .await
            }

            async fn add_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::team(&mut tx, team).await?;
                    if Self::principal_in(&mut *tx, principal).await?.is_none() {
                        return Err(StoreError::NotFound(format!("principal {principal:?}")));
                    }
                    if before.members.iter().any(|m| m == principal) {
                        return Ok((tx, Written::Unchanged(before))); // already a member: nothing changes
                    }
                    sqlx::query("INSERT INTO team_members (team, principal) VALUES ($1, $2)")
                        .bind(team)
                        .bind(principal)
                        .execute(&mut *tx)
                        .await?;
                    let after = Self::touch_team(&mut tx, team).await?;
                    let entry = Entry::new("create", "team_member", format!("/teams/{team}/members/{principal}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn remove_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::team(&mut tx, team).await?;
                    if !before.members.iter().any(|m| m == principal) {
                        return Err(StoreError::NotFound(format!("member {principal:?} of team {team:?}")));
                    }
                    sqlx::query("DELETE FROM team_members WHERE team = $1 AND principal = $2")
                        .bind(team)
                        .bind(principal)
                        .execute(&mut *tx)
                        .await?;
                    let after = Self::touch_team(&mut tx, team).await?;
                    let entry = Entry::new("delete", "team_member", format!("/teams/{team}/members/{principal}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn principal_teams(&self, name: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT team FROM team_members WHERE principal = $1 ORDER BY team")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn memberships(&self) -> Result<Vec<(String, String)>> {
                Ok(sqlx::query_as("SELECT team, principal FROM team_members ORDER BY team, principal")
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

team_store!(SqliteStore, Sqlite);
team_store!(PgStore, Postgres);
