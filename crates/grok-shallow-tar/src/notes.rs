//! The two files every unpacked tree carries about itself: `.git/description`
//! and `.git/shallow-tar.readme`. Our words; pure text.

/// What the notes say about the tree.
#[derive(Debug, Clone, Copy)]
pub struct Notes<'a> {
    /// The public URL of the repository.
    pub url: &'a str,
    /// The branch.
    pub branch: &'a str,
    /// The full tip.
    pub tip: &'a str,
    /// When the tarball was made (UTC, ISO 8601).
    pub created: &'a str,
    /// The depth of the clone.
    pub depth: u32,
}

impl Notes<'_> {
    /// `.git/description`: four lines and a pointer at the readme.
    pub fn description(&self) -> String {
        format!(
            "Shallow tarball of {url}\nbranch {branch}\ncommit {tip}\ngenerated {created} by grok-shallow-tar\nRead .git/shallow-tar.readme before using this tree.\n",
            url = self.url,
            branch = self.branch,
            tip = self.tip,
            created = self.created,
        )
    }

    /// `.git/shallow-tar.readme`: what the tree is and how to use it safely.
    pub fn readme(&self) -> String {
        format!(
            "This directory came from a tarball made by grok-shallow-tar.

It is a clone of {url}
holding only branch {branch} at commit {tip},
with {depth} commit(s) of history and no tags, made {created}.
Nothing is checked out.

The tarball was fetched over the network, so treat its .git as data, not
as settings: its config could name programs git runs. Before anything else:

    rm -rf .git/hooks .git/config .git/objects/info/alternates
    git init -q
    git remote add -t {branch} --no-tags origin <the URL you trust>
    git fsck

Then `git remote update` brings it up to date with one narrow fetch, and
`git checkout <full commit id from a source you trust>` gives you a tree.

Do not run `git fetch --unshallow` or deepen it much: the server would build
the whole history for you, the very work these tarballs exist to save. If
you need the full history, clone the repository normally.
",
            url = self.url,
            branch = self.branch,
            tip = self.tip,
            depth = self.depth,
            created = self.created,
        )
    }
}
