import { render } from 'preact';

render(<p>improv dashboard</p>, document.getElementById('app')!);
