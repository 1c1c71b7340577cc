<?php
// Installs WordPress into an empty database, as wp-admin/install.php does, for
// tests/browser/test_browser_cms.py: php setup.php <docroot> <base URL>. Then: pretty permalinks,
// the classic theme Twenty Twenty-One (it has menus, for nav-menus.php), and a post
// written directly, whose content names the site by its own absolute URLs.
[, $docroot, $base] = $argv;
define('ABSPATH', rtrim($docroot, '/') . '/');
define('WP_INSTALLING', true);
$url = parse_url($base);
$_SERVER['HTTP_HOST'] = $url['host'] . (isset($url['port']) ? ':' . $url['port'] : '');
$_SERVER['REQUEST_URI'] = '/wp-admin/install.php';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';

require ABSPATH . 'wp-load.php';
// install.php mails the new site's owner; no mail leaves a test.
function wp_new_blog_notification() {}
require ABSPATH . 'wp-admin/includes/upgrade.php';

$installed = wp_install('Proxy test', 'admin', 'admin@example.com', false, '', 'Admin-pass-123');
if (get_option('siteurl') !== $base) {
    fwrite(STDERR, 'siteurl is ' . get_option('siteurl') . ", not $base\n");
    exit(1);
}
update_option('permalink_structure', '/%year%/%monthnum%/%day%/%postname%/');
switch_theme('twentytwentyone');

$sample = get_page_by_path('sample-page');
$content = <<<HTML
<!-- wp:paragraph -->
<p>Written directly: see <a href="$base/?page_id=$sample->ID">the sample page</a> and <a href="$base/wp-admin/">the dashboard</a>.</p>
<!-- /wp:paragraph -->

<!-- wp:image {"sizeSlug":"large"} -->
<figure class="wp-block-image size-large"><img src="$base/wp-content/uploads/old/logo.png" alt=""/></figure>
<!-- /wp:image -->
HTML;
$id = wp_insert_post([
    'post_title' => 'Written directly',
    'post_name' => 'written-directly',
    'post_content' => $content,
    'post_status' => 'publish',
    'post_author' => $installed['user_id'],
], true);
if (is_wp_error($id)) {
    fwrite(STDERR, $id->get_error_message() . "\n");
    exit(1);
}
echo json_encode(['written_directly' => $id]), "\n";
