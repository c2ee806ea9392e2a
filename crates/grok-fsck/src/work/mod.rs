//! Doing the run: reconcile the manifest and the status file
//! ([`reconcile`]), tend object storage ([`crate::forks`]), look at every
//! repository ([`analyze`]), then work through the tasks
//! ([`pool`], [`repo_task`], with the git work itself in [`maintain`]).

pub mod analyze;
mod check;
pub mod maintain;
pub mod pool;
pub mod progress;
pub mod reconcile;
pub mod repo_task;

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use grokmirror::formats::fsck_status::Status;
use grokmirror::git::Git;
use grokmirror::repo::alternates::AltMap;
use grokmirror::tree::Tree;
use tracing::info;

use crate::forks;
use crate::plan::schedule::Mode;
use crate::plan::task;
use crate::record::report::Report;
use crate::record::status::{Recorded, StatusWriter};
use crate::settings::Settings;
use grokmirror::tree::real_location;
use maintain::Maintenance;

/// One run of grok-fsck over a tree, under the tree's lock.
pub struct FsckRun<'a> {
    settings: &'a Settings,
    git: Git,
    mode: Mode,
    /// `--connectivity-only`.
    connectivity_only: bool,
    report: &'a Report,
    today: NaiveDate,
    /// Whether stderr is a terminal (a progress bar instead of log lines).
    terminal: bool,
    status_writer: StatusWriter<'a>,
}

impl<'a> FsckRun<'a> {
    /// A run with these settings, as `mode` asks; `connectivity_only`
    /// limits `git fsck` to connectivity. Critical errors go to `report`.
    pub fn new(
        settings: &'a Settings,
        report: &'a Report,
        mode: Mode,
        connectivity_only: bool,
    ) -> FsckRun<'a> {
        use std::io::IsTerminal as _;
        FsckRun {
            settings,
            git: Git::from_env(),
            mode,
            connectivity_only,
            report,
            today: chrono::Local::now().date_naive(),
            terminal: std::io::stderr().is_terminal(),
            status_writer: StatusWriter::new(settings.statusfile.clone(), report),
        }
    }

    /// Do the whole run: reconcile, object storage, analysis, the work.
    pub fn run(&self) -> anyhow::Result<()> {
        let Some(mut status) = self.reconcile()? else {
            return Ok(());
        };
        // Each phase ends early when the run is stopped (Ctrl-C); the
        // status file records what was finished.
        let stopping = || grokmirror::stop::requested().is_some();
        if stopping() {
            return Ok(());
        }
        let objstore_dir = real_location(&self.settings.objstore);
        let tree = self.open_tree(&objstore_dir)?;
        // Object storage first: it decides every repository's role.
        let repos: Vec<PathBuf> = status
            .repos
            .keys()
            .map(PathBuf::from)
            .filter(|p| !self.is_objstore_path(p, &objstore_dir))
            .collect();
        let forks = forks::Forks::new(
            &self.git,
            &tree,
            self.settings,
            self.report,
            &objstore_dir,
            &repos,
        )
        .run(&repos);
        info!("   search: finding all repos using alternates");
        let altmap = AltMap::scan(&[&self.settings.toplevel, &objstore_dir]);

        let maintenance = Maintenance {
            git: &self.git,
            settings: self.settings,
            report: self.report,
            altmap: &altmap,
            today: self.today,
            tree: &tree,
        };
        let mut tasks = self.analyze_tree(&maintenance, &mut status, &objstore_dir, &forks.repack);
        tasks.extend(self.analyze_objstore(
            &maintenance,
            &mut status,
            &objstore_dir,
            &forks.full_repack,
        ));
        self.write_status(&status);
        if stopping() {
            return Ok(());
        }
        if tasks.is_empty() {
            info!("No repos need attention.");
            return Ok(());
        }
        task::work_order(&mut tasks);
        self.process(&maintenance, tasks, status);
        Ok(())
    }

    /// The top level, with object storage kept outside it reachable too.
    fn open_tree(&self, objstore_dir: &Path) -> anyhow::Result<Tree> {
        let tree = Tree::open(&self.settings.toplevel, grokmirror::tree::Reserved::none())
            .with_context(|| {
                format!(
                    "cannot open the top level {}",
                    self.settings.toplevel.display()
                )
            })?;
        Ok(tree.with_other_root(objstore_dir))
    }

    fn is_objstore_path(&self, path: &Path, objstore_dir: &Path) -> bool {
        path.starts_with(objstore_dir) || path.starts_with(&self.settings.objstore)
    }

    fn write_status(&self, status: &Status) {
        self.status_writer.write(status)
    }

    fn flush_status(&self, recorded: &mut Recorded) {
        self.status_writer.flush(recorded)
    }
}
