#!/usr/bin/perl
# A stand-in for scripts/checkpatch.pl in the patches.check tests: it answers with the real
# output captured in ../checkpatch/ (style-problems.txt for a patch that mentions
# BADSTYLE, clean.txt otherwise), with checkpatch's exit status.
use strict;
use File::Basename;
my $patch = $ARGV[-1];
open(my $fh, '<', $patch) or die "cannot open $patch";
my $text = do { local $/; <$fh> };
my $bad = $text =~ /BADSTYLE/;
my $dir = dirname(__FILE__) . "/../checkpatch";
$dir = $ENV{FAKE_CHECKPATCH_DATA} if $ENV{FAKE_CHECKPATCH_DATA};
open(my $out, '<', "$dir/" . ($bad ? "style-problems.txt" : "clean.txt")) or die "no data";
print while <$out>;
exit($bad ? 1 : 0);
